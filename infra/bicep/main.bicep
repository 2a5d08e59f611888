// VicunaBatch on Azure, one resource group: Service Bus work queue, Storage (blobs + control-plane queues, and
// the Event Grid system topic whose subscription feeds the inbox trigger), Function App on Flex Consumption (Api,
// Finalizer, Deliverer, Inbox, Pipelines), GPU workers on Container Apps serverless GPUs, Key Vault, Log
// Analytics + Application Insights, Container Registry, and the role assignments between them. No keys, no
// connection strings: every hop authenticates with a managed identity.
//
//   infra/deploy.sh dev      (az deployment group create --template-file main.bicep --parameters main.dev.bicepparam)

targetScope = 'resourceGroup'

import { servedModel } from 'types.bicep'

@description('Short name used in every resource name.')
@minLength(2)
@maxLength(10)
param name string = 'vicuna'

@description('Deployment environment.')
@allowed(['dev', 'prod'])
param environment string

@description('Azure region of every resource (pick one that offers Container Apps serverless GPUs).')
param location string = resourceGroup().location

@description('The models served, the default first (batches whose lines name no model, and pipelines, run on it). Each gets its own work queue and GPU worker app, which KEDA scales on that queue.')
@minLength(1)
param models servedModel[] = [
  { name: 'vicuna-13b', package: 'vicuna-13b-v1.5-fp16', gpuProfileType: 'Consumption-GPU-NC24-A100', maxReplicas: 2 }
]

@description('Worker image, repository:tag in the project registry (or a full reference elsewhere); empty for the public placeholder, which a first deploy runs until deploy.sh has pushed the worker image.')
param workerImage string = ''

@description('Queued shards per worker replica before another replica starts.')
@minValue(1)
param messagesPerReplica int = 8

@description('Seconds a worker gets after SIGTERM to checkpoint and release its shards.')
@minValue(30)
@maxValue(600)
param terminationGracePeriodSeconds int = 240

@description('Deliveries of a shard before it is dead-lettered.')
@minValue(1)
param maxDeliveryCount int = 5

@description('Duplicate detection window of the work queue (ISO 8601).')
param duplicateDetectionWindow string = 'PT1H'

@description('Most Function App instances.')
@minValue(1)
param functionMaxInstances int = 40

@description('Storage redundancy.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param storageSku string = 'Standard_LRS'

@description('Object id of the operator (user, group or CI principal) that uploads models and sets secrets; empty for none.')
param adminPrincipalId string = ''

@description('Principal type of adminPrincipalId.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param adminPrincipalType string = 'User'

@description('Path of the OpenAI-compatible API under the Function App host.')
param apiPath string = '/v1'

// a public image that exists before the registry does (it serves nothing: the worker apps scale on an empty queue)
var placeholderImage = 'mcr.microsoft.com/k8se/quickstart:latest'
var suffix = take(uniqueString(resourceGroup().id, name, environment), 6)
var tags = { app: 'vicuna-batch', environment: environment }
var compact = toLower('${name}${environment}${suffix}')
var names = {
  functionIdentity: 'id-${name}-func-${environment}'
  workerIdentity: 'id-${name}-worker-${environment}'
  scalerIdentity: 'id-${name}-scaler-${environment}'
  workspace: 'log-${name}-${environment}'
  appInsights: 'appi-${name}-${environment}'
  serviceBus: 'sb-${name}-${environment}-${suffix}'
  storage: take('st${compact}', 24)
  eventGridTopic: 'evgt-${name}-storage-${environment}'
  keyVault: take('kv-${name}-${environment}-${suffix}', 24)
  registry: take('cr${compact}', 50)
  plan: 'plan-${name}-${environment}'
  functionApp: 'func-${name}-${environment}-${suffix}'
  containerEnvironment: 'cae-${name}-${environment}'
  // a worker app per model; container app names are lowercase, so the model's name goes in by its hash (and a tag)
  workerAppPrefix: 'ca-${name}-${environment}-'
}
var containers = {
  inputs: 'inputs'
  results: 'results'
  jobs: 'jobs'
  inbox: 'inbox'
  pipelines: 'pipelines'
  models: 'models'
  deployment: 'app-package'
}
// model M's work queue is work-M (the Functions app sends there: ServiceBus__ModelQueuePrefix)
var workQueuePrefix = 'work-'
var workQueueNames = [for model in models: '${workQueuePrefix}${model.name}']
var shardDoneQueueName = 'shard-done'
var webhookQueueName = 'webhook-deliveries'
var inboxEventsQueueName = 'inbox-events'

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.functionIdentity
  location: location
  tags: tags
}

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.workerIdentity
  location: location
  tags: tags
}

resource scalerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.scalerIdentity
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    retentionInDays: environment == 'prod' ? 90 : 30
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    tags: tags
    namespaceName: names.serviceBus
    queueNames: workQueueNames
    lockDuration: 'PT5M'
    maxDeliveryCount: maxDeliveryCount
    messageTimeToLive: 'P2D'
    duplicateDetectionWindow: duplicateDetectionWindow
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    accountName: names.storage
    skuName: storageSku
    containerNames: [
      containers.inputs
      containers.results
      containers.jobs
      containers.inbox
      containers.pipelines
      containers.models
      containers.deployment
    ]
    queueNames: [
      shardDoneQueueName
      '${shardDoneQueueName}-poison'
      webhookQueueName
      '${webhookQueueName}-poison'
      inboxEventsQueueName
      '${inboxEventsQueueName}-poison'
    ]
    eventGridTopicName: names.eventGridTopic
    blobSoftDeleteDays: 7
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    vaultName: names.keyVault
    enablePurgeProtection: environment == 'prod'
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  params: {
    location: location
    tags: tags
    registryName: names.registry
    skuName: environment == 'prod' ? 'Standard' : 'Basic'
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    functionIdentityName: functionIdentity.name
    workerIdentityName: workerIdentity.name
    scalerIdentityName: scalerIdentity.name
    adminPrincipalId: adminPrincipalId
    adminPrincipalType: adminPrincipalType
    // names known at the start of the deployment (what-if can predict the assignments), hence dependsOn
    storageAccountName: names.storage
    containers: {
      inputs: containers.inputs
      results: containers.results
      jobs: containers.jobs
      models: containers.models
    }
    shardDoneQueueName: shardDoneQueueName
    inboxEventsQueueName: inboxEventsQueueName
    eventGridTopicName: names.eventGridTopic
    serviceBusNamespaceName: names.serviceBus
    workQueueNames: workQueueNames
    keyVaultName: names.keyVault
    registryName: names.registry
    appInsightsName: names.appInsights
  }
  dependsOn: [storage, serviceBus, keyVault, registry, monitoring]
}

module functions 'modules/functions.bicep' = {
  name: 'functions'
  params: {
    location: location
    tags: tags
    planName: names.plan
    appName: names.functionApp
    identityId: functionIdentity.id
    identityClientId: functionIdentity.properties.clientId
    storageAccountName: storage.outputs.accountName
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerName: containers.deployment
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    modelNames: [for model in models: model.name]
    workQueuePrefix: workQueuePrefix
    shardDoneQueueName: shardDoneQueueName
    webhookQueueName: webhookQueueName
    inboxEventsQueueName: inboxEventsQueueName
    containers: {
      inputs: containers.inputs
      results: containers.results
      jobs: containers.jobs
      inbox: containers.inbox
      pipelines: containers.pipelines
    }
    modelSourceUri: '${storage.outputs.blobEndpoint}${containers.models}/${models[0].package}'
    keyVaultUri: keyVault.outputs.vaultUri
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    maximumInstanceCount: functionMaxInstances
    instanceMemoryMB: 2048
  }
  // the host starts with its roles in place (storage, queue triggers)
  dependsOn: [rbac]
}

// the inbox: BlobCreated events of the inbox container → the inbox-events queue, once the topic may send there
module inboxEvents 'modules/inbox-events.bicep' = {
  name: 'inbox-events'
  params: {
    storageAccountName: names.storage
    eventGridTopicName: names.eventGridTopic
    inboxContainerName: containers.inbox
    queueName: inboxEventsQueueName
  }
  dependsOn: [rbac]
}

module workers 'modules/workers.bicep' = {
  name: 'workers'
  params: {
    location: location
    tags: tags
    environmentName: names.containerEnvironment
    appNamePrefix: names.workerAppPrefix
    workspaceId: monitoring.outputs.workspaceId
    models: models
    workerIdentityId: workerIdentity.id
    workerIdentityClientId: workerIdentity.properties.clientId
    scalerIdentityId: scalerIdentity.id
    registryLoginServer: registry.outputs.loginServer
    image: empty(workerImage) ? placeholderImage : workerImage
    messagesPerReplica: messagesPerReplica
    terminationGracePeriodSeconds: terminationGracePeriodSeconds
    serviceBusNamespaceName: serviceBus.outputs.namespaceName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    workQueueNames: serviceBus.outputs.queueNames
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    containers: {
      inputs: containers.inputs
      results: containers.results
      jobs: containers.jobs
      models: containers.models
    }
    shardDoneQueueName: shardDoneQueueName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
  }
  // AcrPull and the scaler's queue role must exist before the first revision pulls and scales
  dependsOn: [rbac]
}

@description('Base URL of the OpenAI-compatible batch API.')
output apiBaseUrl string = 'https://${functions.outputs.defaultHostName}${apiPath}'
output functionAppName string = functions.outputs.appName
@description('The worker app of each model, by the model\'s name.')
output workerAppNames object = workers.outputs.workerAppNames
output registryLoginServer string = registry.outputs.loginServer
output registryName string = registry.outputs.registryName
output storageAccountName string = storage.outputs.accountName
output modelsContainerUrl string = '${storage.outputs.blobEndpoint}${containers.models}'
output keyVaultName string = keyVault.outputs.vaultName
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
@description('The work queue of each model, by the model\'s name.')
output workQueueNames object = toObject(models, model => model.name, model => '${workQueuePrefix}${model.name}')
