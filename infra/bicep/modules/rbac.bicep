// Every role assignment of the deployment, each at the narrowest scope that works. The table in
// tests/VicunaBatch.Infra.Tests/RoleAssignmentTests.cs is the contract: change both together.
//
//   function identity (Api, Finalizer, Deliverer, Pipelines)
//     Azure Service Bus Data Sender    work queue        the Api enqueues shards
//     Storage Blob Data Owner          storage account   host storage (AzureWebJobsStorage: the documented role
//                                                        for an identity; it creates the azure-webjobs-*
//                                                        containers), data containers, deployment package
//     Storage Queue Data Contributor   storage account   queue triggers (ControlQueues connection: shard-done,
//                                                        webhook deliveries, inbox-events, poison queues)
//     Key Vault Secrets User           vault             API keys, webhook signing secrets
//     Monitoring Metrics Publisher     App Insights      telemetry with Entra auth
//   worker identity (GPU workers)
//     Azure Service Bus Data Receiver  work queue        peek-lock, renew, complete, abandon, dead-letter
//     Storage Blob Data Reader         inputs, models    input files, the model package
//     Storage Blob Data Contributor    results, jobs     checkpoints, shard reports
//     Storage Queue Data Message Sender shard-done queue shard-done events
//     AcrPull                          registry          the worker image
//     Monitoring Metrics Publisher     App Insights      telemetry with Entra auth
//   scaler identity (KEDA scale rule only; lifecycle None in the worker apps' identitySettings, so no
//   container can get a token for it)
//     Azure Service Bus Data Owner     work queue        the queue's message count comes from the
//                                                        management (runtime properties) API, which
//                                                        needs Manage; scoped to the one queue
//   Event Grid system topic (the storage account's; its system-assigned identity)
//     Storage Queue Data Message Sender inbox-events queue  BlobCreated events of the inbox container
//   admin principal (optional: the person or pipeline that deploys)
//     Storage Blob Data Contributor    models            upload model packages
//     Key Vault Secrets Officer        vault             set API keys and webhook secrets

@description('Name of the Function App identity.')
param functionIdentityName string

@description('Name of the GPU worker identity.')
param workerIdentityName string

@description('Name of the identity the worker scale rule uses.')
param scalerIdentityName string

@description('Object id of a user or group that deploys and operates (uploads models, sets secrets); empty for none.')
param adminPrincipalId string

@description('Principal type of adminPrincipalId.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param adminPrincipalType string

@description('Storage account name.')
param storageAccountName string

@description('Blob container names.')
param containers { inputs: string, results: string, jobs: string, models: string }

@description('Storage queue of shard-done events.')
param shardDoneQueueName string

@description('Storage queue the inbox\'s BlobCreated events go to.')
param inboxEventsQueueName string

@description('Name of the storage account\'s Event Grid system topic (its system-assigned identity delivers the inbox events).')
param eventGridTopicName string

@description('Service Bus namespace name.')
param serviceBusNamespaceName string

@description('The work queues, one per served model.')
param workQueueNames string[]

@description('Key Vault name.')
param keyVaultName string

@description('Container registry name.')
param registryName string

@description('Application Insights component name.')
param appInsightsName string

// built-in role definition ids (the same in every tenant)
var roles = {
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionIdentityName
}

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: workerIdentityName
}

resource scalerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: scalerIdentityName
}

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource inputs 'containers' existing = { name: containers.inputs }
    resource results 'containers' existing = { name: containers.results }
    resource jobs 'containers' existing = { name: containers.jobs }
    resource models 'containers' existing = { name: containers.models }
  }

  resource queueService 'queueServices' existing = {
    name: 'default'

    resource shardDone 'queues' existing = { name: shardDoneQueueName }
    resource inboxEvents 'queues' existing = { name: inboxEventsQueueName }
  }
}

resource eventGridTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: eventGridTopicName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource workQueues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [for queueName in workQueueNames: {
  parent: serviceBus
  name: queueName
}]

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' existing = {
  name: registryName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// ---- function identity

resource functionSendsWork 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in workQueueNames: {
  name: guid(workQueues[i].id, functionIdentity.id, roles.serviceBusDataSender)
  scope: workQueues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource functionBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource functionQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource functionSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionIdentity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource functionTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionIdentity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- worker identity

resource workerReceivesWork 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in workQueueNames: {
  name: guid(workQueues[i].id, workerIdentity.id, roles.serviceBusDataReceiver)
  scope: workQueues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource workerReadsInputs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::inputs.id, workerIdentity.id, roles.storageBlobDataReader)
  scope: storage::blobService::inputs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerReadsModels 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::models.id, workerIdentity.id, roles.storageBlobDataReader)
  scope: storage::blobService::models
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerWritesResults 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::results.id, workerIdentity.id, roles.storageBlobDataContributor)
  scope: storage::blobService::results
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerWritesJobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::jobs.id, workerIdentity.id, roles.storageBlobDataContributor)
  scope: storage::blobService::jobs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerSendsShardDone 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::queueService::shardDone.id, workerIdentity.id, roles.storageQueueDataMessageSender)
  scope: storage::queueService::shardDone
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerPullsImage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workerIdentity.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, workerIdentity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- scaler identity

resource scalerReadsQueueLength 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in workQueueNames: {
  name: guid(workQueues[i].id, scalerIdentity.id, roles.serviceBusDataOwner)
  scope: workQueues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: scalerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

// ---- Event Grid system topic

resource eventGridSendsInboxEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::queueService::inboxEvents.id, eventGridTopic.id, roles.storageQueueDataMessageSender)
  scope: storage::queueService::inboxEvents
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: eventGridTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- admin principal (optional)

resource adminUploadsModels 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(storage::blobService::models.id, adminPrincipalId, roles.storageBlobDataContributor)
  scope: storage::blobService::models
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

resource adminSetsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}
