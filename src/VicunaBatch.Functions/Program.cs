using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;
using VicunaBatch.Functions;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddVicunaBatchFunctions(builder.Configuration);
builder.Build().Run();
