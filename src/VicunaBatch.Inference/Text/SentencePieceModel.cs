using System.Buffers.Binary;
using System.Text;

namespace VicunaBatch.Inference.Text;

/// <summary>Piece types of sentencepiece_model.proto (<c>ModelProto.SentencePiece.Type</c>).</summary>
internal enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>Model types of sentencepiece_model.proto (<c>TrainerSpec.ModelType</c>).</summary>
internal enum SentencePieceModelType
{
    Unigram = 1,
    Bpe = 2,
    Word = 3,
    Char = 4,
}

internal sealed record SentencePiece(string Piece, float Score, PieceType Type);

/// <summary>
/// The fields of a SentencePiece <c>tokenizer.model</c> (protobuf <c>ModelProto</c>) that encoding and
/// decoding need. Read with a minimal protobuf reader: the generated classes inside
/// Microsoft.ML.Tokenizers are internal.
/// </summary>
internal sealed class SentencePieceModel
{
    public List<SentencePiece> Pieces { get; } = [];
    public SentencePieceModelType ModelType { get; private set; } = SentencePieceModelType.Unigram;
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public bool ByteFallback { get; private set; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public string UnkSurface { get; private set; } = " \u2047 ";
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsMap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    public static SentencePieceModel Parse(ReadOnlySpan<byte> bytes)
    {
        var model = new SentencePieceModel();
        var reader = new ProtoReader(bytes);
        while (reader.TryReadTag(out int field, out int wireType))
        {
            switch (field)
            {
                case 1: model.Pieces.Add(ParsePiece(reader.ReadBytes())); break;
                case 2: model.ParseTrainerSpec(reader.ReadBytes()); break;
                case 3: model.ParseNormalizerSpec(reader.ReadBytes()); break;
                default: reader.Skip(wireType); break;
            }
        }
        return model;
    }

    private static SentencePiece ParsePiece(ReadOnlySpan<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        while (reader.TryReadTag(out int field, out int wireType))
        {
            switch (field)
            {
                case 1: piece = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                case 2: score = BitConverter.Int32BitsToSingle(reader.ReadFixed32()); break;
                case 3: type = (PieceType)reader.ReadVarint(); break;
                default: reader.Skip(wireType); break;
            }
        }
        return new SentencePiece(piece, score, type);
    }

    private void ParseTrainerSpec(ReadOnlySpan<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        while (reader.TryReadTag(out int field, out int wireType))
        {
            switch (field)
            {
                case 3: ModelType = (SentencePieceModelType)reader.ReadVarint(); break;
                case 24: TreatWhitespaceAsSuffix = reader.ReadVarint() != 0; break;
                case 35: ByteFallback = reader.ReadVarint() != 0; break;
                case 40: UnkId = (int)reader.ReadVarint(); break;
                case 41: BosId = (int)reader.ReadVarint(); break;
                case 42: EosId = (int)reader.ReadVarint(); break;
                case 44: UnkSurface = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                default: reader.Skip(wireType); break;
            }
        }
    }

    private void ParseNormalizerSpec(ReadOnlySpan<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        while (reader.TryReadTag(out int field, out int wireType))
        {
            switch (field)
            {
                case 1: NormalizerName = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                case 2: PrecompiledCharsMap = reader.ReadBytes().ToArray(); break;
                case 3: AddDummyPrefix = reader.ReadVarint() != 0; break;
                case 4: RemoveExtraWhitespaces = reader.ReadVarint() != 0; break;
                case 5: EscapeWhitespaces = reader.ReadVarint() != 0; break;
                default: reader.Skip(wireType); break;
            }
        }
    }

    /// <summary>Just enough of the protobuf wire format for sentencepiece_model.proto.</summary>
    private ref struct ProtoReader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        public bool TryReadTag(out int field, out int wireType)
        {
            if (_position >= _bytes.Length)
            {
                field = wireType = 0;
                return false;
            }
            ulong tag = ReadVarint();
            field = (int)(tag >> 3);
            wireType = (int)(tag & 7);
            return true;
        }

        public ulong ReadVarint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = _bytes[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }
            throw new InvalidDataException($"Malformed varint at byte {_position} of the tokenizer model.");
        }

        public int ReadFixed32()
        {
            int value = BinaryPrimitives.ReadInt32LittleEndian(_bytes.Slice(_position, 4));
            _position += 4;
            return value;
        }

        public ReadOnlySpan<byte> ReadBytes()
        {
            int length = checked((int)ReadVarint());
            var slice = _bytes.Slice(_position, length);
            _position += length;
            return slice;
        }

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case 0: ReadVarint(); break;
                case 1: _position += 8; break;
                case 2: ReadBytes(); break;
                case 5: _position += 4; break;
                default: throw new InvalidDataException($"Unsupported protobuf wire type {wireType} in the tokenizer model.");
            }
        }
    }
}
