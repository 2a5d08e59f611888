using 'main.bicep'

param environment = 'prod'
// the default model first; add a model (its own queue and worker app) by adding an entry
param models = [
  { name: 'vicuna-13b', package: 'vicuna-13b-v1.5-fp16', gpuProfileType: 'Consumption-GPU-NC24-A100', maxReplicas: 8 }
]
param messagesPerReplica = 8
param terminationGracePeriodSeconds = 240
param maxDeliveryCount = 5
param duplicateDetectionWindow = 'PT6H'
param functionMaxInstances = 100
param storageSku = 'Standard_ZRS'
param adminPrincipalId = readEnvironmentVariable('VICUNA_ADMIN_PRINCIPAL_ID', '')
// empty: the public placeholder (main.bicep) until deploy.sh has pushed the worker image and sets VICUNA_WORKER_IMAGE
param workerImage = readEnvironmentVariable('VICUNA_WORKER_IMAGE', '')
