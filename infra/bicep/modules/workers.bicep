// Container Apps environment with a serverless GPU workload profile per GPU kind the models use, and one GPU worker
// app per served model. Each app scales minReplicas..maxReplicas on its own model's work queue through KEDA's
// azure-servicebus scaler, authenticated with a managed identity (no SAS connection string). On scale-in or eviction the worker gets SIGTERM and
// terminationGracePeriodSeconds to stop taking shards, checkpoint in-flight requests and abandon its messages.

@description('Azure region (must offer serverless GPUs).')
param location string

@description('Resource tags.')
param tags object

import { servedModel } from '../types.bicep'

@description('Container Apps environment name.')
param environmentName string

@description('Worker app names are this prefix and a hash of the model\'s name (app names are lowercase; the model\'s name is a tag).')
param appNamePrefix string

@description('The served models: each gets a worker app on its GPU profile, draining its own work queue.')
@minLength(1)
param models servedModel[]

@description('Log Analytics workspace that receives the environment\'s logs (through diagnostic settings: no shared key).')
param workspaceId string

@description('Resource id of the worker\'s runtime identity (AcrPull, Service Bus receive, blobs).')
param workerIdentityId string

@description('Client id of that identity.')
param workerIdentityClientId string

@description('Resource id of the identity KEDA uses to read the queue length.')
param scalerIdentityId string

@description('Registry login server (<name>.azurecr.io).')
param registryLoginServer string

@description('Worker image: a repository:tag in the registry, or a full reference to another registry.')
param image string

@description('Shards per replica before KEDA adds one (the engine batches requests of several shards).')
@minValue(1)
param messagesPerReplica int

@description('Seconds between SIGTERM and SIGKILL: enough to finish the current step and checkpoint.')
@minValue(30)
@maxValue(600)
param terminationGracePeriodSeconds int

@description('Service Bus namespace name (KEDA takes the name, not the host).')
param serviceBusNamespaceName string

@description('Service Bus namespace host name.')
param serviceBusFullyQualifiedNamespace string

@description('The work queue of each model, in the order of models.')
param workQueueNames string[]

@description('Blob endpoint of the storage account.')
param blobEndpoint string

@description('Queue endpoint of the storage account.')
param queueEndpoint string

@description('Blob container names the worker uses.')
param containers { inputs: string, results: string, jobs: string, models: string }

@description('Storage queue that receives shard-done events.')
param shardDoneQueueName string

@description('Application Insights connection string (not a credential: local auth is disabled).')
param appInsightsConnectionString string

// One replica takes the whole serverless GPU profile: A100 80 GB holds Vicuna-13B fp16 (about 26 GB of weights)
// plus the KV cache; host memory holds the package (read from blob storage) for as long as the model is loaded.
// A T4 (16 GB) needs the int4 export.
var gpuSizes = {
  'Consumption-GPU-NC24-A100': { cpu: 24, memory: '220Gi' }
  'Consumption-GPU-NC8as-T4': { cpu: 8, memory: '56Gi' }
}
// the environment's workload profile of each GPU kind
var gpuProfileNames = {
  'Consumption-GPU-NC24-A100': 'gpu-a100'
  'Consumption-GPU-NC8as-T4': 'gpu-t4'
}
var gpuProfileTypes = union(map(models, model => model.gpuProfileType), [])

// a model's worker app: the prefix and a stable hash of the model's name
func appNameOfModel(prefix string, model string) string => '${prefix}${take(uniqueString(model), 6)}'

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    // logs go to Azure Monitor; the diagnostic setting below routes them to Log Analytics
    appLogsConfiguration: { destination: 'azure-monitor' }
    workloadProfiles: concat(
      [{ name: 'Consumption', workloadProfileType: 'Consumption' }],
      map(gpuProfileTypes, type => { name: gpuProfileNames[type], workloadProfileType: type })
    )
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs-to-workspace'
  scope: environment
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

// what every model's worker is told; workerEnv adds the model and its queue
var commonEnv = [
  { name: 'AZURE_CLIENT_ID', value: workerIdentityClientId }
  { name: 'ServiceBus__FullyQualifiedNamespace', value: serviceBusFullyQualifiedNamespace }
  { name: 'Storage__BlobServiceUri', value: blobEndpoint }
  { name: 'Storage__QueueServiceUri', value: queueEndpoint }
  { name: 'Storage__Containers__Inputs', value: containers.inputs }
  { name: 'Storage__Containers__Results', value: containers.results }
  { name: 'Storage__Containers__Jobs', value: containers.jobs }
  { name: 'Storage__Queues__ShardDone', value: shardDoneQueueName }
  { name: 'Worker__DrainSeconds', value: string(terminationGracePeriodSeconds - 15) }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${workerIdentityClientId};Authorization=AAD' }
]

resource workers 'Microsoft.App/containerApps@2025-01-01' = [for (model, i) in models: {
  name: appNameOfModel(appNamePrefix, model.name)
  location: location
  tags: union(tags, { model: model.name })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${workerIdentityId}': {}
      '${scalerIdentityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: gpuProfileNames[model.gpuProfileType]
    configuration: {
      activeRevisionsMode: 'Single'
      // no ingress: the worker only pulls from the queue
      registries: [{ server: registryLoginServer, identity: workerIdentityId }]
      // the scaler's identity (Service Bus Data Owner) serves the KEDA rule only: no container gets a token for it
      identitySettings: [{ identity: scalerIdentityId, lifecycle: 'None' }]
    }
    template: {
      terminationGracePeriodSeconds: terminationGracePeriodSeconds
      containers: [
        {
          name: 'worker'
          image: contains(image, '/') ? image : '${registryLoginServer}/${image}'
          resources: {
            cpu: gpuSizes[model.gpuProfileType].cpu
            memory: gpuSizes[model.gpuProfileType].memory
          }
          // the model it serves and that model's queue; at start it reads <models container>/<package>/ in parallel
          // ranged reads straight into host memory and loads it from there: no copy on the replica's disk (8 GiB of
          // ephemeral storage, less than a 13B package)
          env: concat(commonEnv, [
            { name: 'Model__Name', value: model.name }
            { name: 'ServiceBus__QueueName', value: workQueueNames[i] }
            { name: 'Model__SourceUri', value: '${blobEndpoint}${containers.models}/${model.package}' }
          ])
          // vicuna-worker answers /healthz on 8081 (Worker__HealthUrls in its image): healthy while it reads and
          // loads the model, works or drains; 503 once it failed or lost the queue for over a minute
          probes: [
            {
              type: 'Liveness'
              httpGet: { path: '/healthz', port: 8081 }
              initialDelaySeconds: 30
              periodSeconds: 30
              failureThreshold: 4
            }
          ]
        }
      ]
      scale: {
        minReplicas: model.?minReplicas ?? 0
        maxReplicas: model.maxReplicas
        // KEDA polls the queue; 300 s without messages before the last replica goes
        cooldownPeriod: 300
        pollingInterval: 30
        rules: [
          {
            name: 'work-queue'
            custom: {
              type: 'azure-servicebus'
              identity: scalerIdentityId
              metadata: {
                namespace: serviceBusNamespaceName
                queueName: workQueueNames[i]
                messageCount: string(messagesPerReplica)
              }
            }
          }
        ]
      }
    }
  }
}]

output environmentName string = environment.name
@description('The worker app of each model, by the model\'s name.')
output workerAppNames object = toObject(models, model => model.name, model => appNameOfModel(appNamePrefix, model.name))
