// dev: one T4-class budget is not enough for fp16 13B, so dev runs the same A100 profile with one replica;
// switch a model's gpuProfileType to the T4 with an int4 package for a cheaper smoke environment.
using 'main.bicep'

param environment = 'dev'
// the default model first; add a model (its own queue and worker app) by adding an entry
param models = [
  { name: 'vicuna-13b', package: 'vicuna-13b-v1.5-fp16', gpuProfileType: 'Consumption-GPU-NC24-A100', maxReplicas: 1 }
]
param messagesPerReplica = 8
param functionMaxInstances = 10
param storageSku = 'Standard_LRS'
param adminPrincipalId = readEnvironmentVariable('VICUNA_ADMIN_PRINCIPAL_ID', '')
// empty: the public placeholder (main.bicep) until deploy.sh has pushed the worker image and sets VICUNA_WORKER_IMAGE
param workerImage = readEnvironmentVariable('VICUNA_WORKER_IMAGE', '')
