// Function App on Flex Consumption (FC1) hosting the Api, Finalizer, Deliverer, Inbox and Pipelines functions,
// dotnet-isolated 10.0. Every connection is identity-based: the app settings name resources and the
// user-assigned identity (`__credential: managedidentity`, `__clientId`), never a key or connection string.

@description('Azure region.')
param location string

@description('Resource tags.')
param tags object

@description('Flex Consumption plan name.')
param planName string

@description('Function App name (globally unique: <name>.azurewebsites.net).')
param appName string

@description('Resource id of the Function App\'s user-assigned identity.')
param identityId string

@description('Client id of that identity (selects it in DefaultAzureCredential and in identity-based connections).')
param identityClientId string

@description('Storage account for the Functions host, the data containers and the control-plane queues.')
param storageAccountName string

@description('Blob endpoint of that account.')
param blobEndpoint string

@description('Queue endpoint of that account.')
param queueEndpoint string

@description('Container that holds the deployment package.')
param deploymentContainerName string

@description('Service Bus namespace host name (<ns>.servicebus.windows.net).')
param serviceBusFullyQualifiedNamespace string

@description('The served models\' names, the default first (Models__Served).')
param modelNames string[]

@description('Model M\'s work queue is this prefix and M (ServiceBus__ModelQueuePrefix).')
param workQueuePrefix string

@description('Storage queue of shard-done events (Finalizer trigger).')
param shardDoneQueueName string

@description('Storage queue of webhook deliveries (Deliverer trigger).')
param webhookQueueName string

@description('Storage queue of the inbox container\'s BlobCreated events (Inbox trigger).')
param inboxEventsQueueName string

@description('Blob container names by role.')
param containers { inputs: string, results: string, jobs: string, inbox: string, pipelines: string }

@description('Blob folder of the default model\'s package; the Pipelines timer copies its tokenizer and config from it (not the weights).')
param modelSourceUri string

@description('Key Vault URI for API keys and webhook secrets.')
param keyVaultUri string

@description('Application Insights connection string (not a credential: local auth is disabled).')
param appInsightsConnectionString string

@description('Most instances the app scales out to.')
@minValue(1)
param maximumInstanceCount int

@description('Memory of one instance (MB).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

var identityConnection = {
  credential: 'managedidentity'
  clientId: identityClientId
}

var appSettings = {
  // host storage (leases, timers)
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: identityConnection.credential
  AzureWebJobsStorage__clientId: identityConnection.clientId
  // the queue triggers' connection (FunctionsOptions.QueueTriggerConnection): not "Storage", which the runtime resolves
  // to AzureWebJobsStorage (it tries AzureWebJobs<name> first)
  ControlQueues__queueServiceUri: queueEndpoint
  ControlQueues__credential: identityConnection.credential
  ControlQueues__clientId: identityConnection.clientId
  // data: blobs and control-plane queues as the app's code reaches them (AzureTransportOptions)
  Storage__blobServiceUri: blobEndpoint
  Storage__queueServiceUri: queueEndpoint
  Storage__clientId: identityConnection.clientId
  Storage__Containers__Inputs: containers.inputs
  Storage__Containers__Results: containers.results
  Storage__Containers__Jobs: containers.jobs
  Storage__Containers__Inbox: containers.inbox
  Storage__Containers__Pipelines: containers.pipelines
  Pipelines__ModelSourceUri: modelSourceUri
  Storage__Queues__ShardDone: shardDoneQueueName
  Storage__Queues__WebhookDeliveries: webhookQueueName
  Storage__Queues__InboxEvents: inboxEventsQueueName
  // the served models, and their work queues (the Api sends each batch's shards to its model's queue)
  Models__Served: join(modelNames, ',')
  ServiceBus__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  ServiceBus__credential: identityConnection.credential
  ServiceBus__clientId: identityConnection.clientId
  ServiceBus__ModelQueuePrefix: workQueuePrefix
  KeyVault__VaultUri: keyVaultUri
  // secrets as Key Vault references, resolved by the platform with keyVaultReferenceIdentity: no value passes through
  // a deployment. api-keys: comma-separated bearer keys (one per tenant); api-tenant-key: the installation's key of the
  // tenant ids (HMAC of each API key; openssl rand -hex 32, never changed); webhook-signing-secret: whsec_… (see README)
  Api__Keys: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/api-keys/)'
  Api__TenantKey: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/api-tenant-key/)'
  Webhooks__SigningSecret: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/webhook-signing-secret/)'
  // DefaultAzureCredential in application code picks the user-assigned identity
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
}

// no FTP or SCM basic-auth publishing: deployments go through Entra ID
resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

output appName string = app.name
output defaultHostName string = app.properties.defaultHostName
