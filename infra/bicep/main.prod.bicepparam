using 'main.bicep'

param environment = 'prod'
param gpuProfileType = 'Consumption-GPU-NC24-A100'
param workerMaxReplicas = 8
param messagesPerReplica = 8
param terminationGracePeriodSeconds = 240
param modelName = 'vicuna-13b-v1.5-fp16'
param maxDeliveryCount = 5
param duplicateDetectionWindow = 'PT6H'
param functionMaxInstances = 100
param storageSku = 'Standard_ZRS'
param adminPrincipalId = readEnvironmentVariable('VICUNA_ADMIN_PRINCIPAL_ID', '')
param workerImage = readEnvironmentVariable('VICUNA_WORKER_IMAGE', 'vicuna-batch-worker:latest')
