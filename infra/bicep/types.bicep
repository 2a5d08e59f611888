// Types shared by main.bicep and its modules.

@export()
@description('The serverless GPU workload profiles a worker app can run on.')
type gpuProfile = 'Consumption-GPU-NC24-A100' | 'Consumption-GPU-NC8as-T4'

@export()
@description('A model the deployment serves, with its own Service Bus work queue and GPU worker app.')
type servedModel = {
  @description('The name batches, input lines (body.model) and GET /v1/models use: 1-64 letters, digits, ".", "_" or "-", starting and ending with a letter or digit.')
  @minLength(1)
  @maxLength(64)
  name: string

  @description('Model package: its folder in the models container (e.g. vicuna-13b-v1.5-fp16).')
  @minLength(1)
  package: string

  @description('Serverless GPU of its workers: A100 80 GB (Vicuna-13B fp16) or T4 16 GB (int4 exports only).')
  gpuProfileType: gpuProfile

  @description('Fewest worker replicas (default 0: none while its queue is empty).')
  @minValue(0)
  minReplicas: int?

  @description('Most worker replicas.')
  @minValue(1)
  maxReplicas: int
}
