// Service Bus namespace (Entra ID only: SAS keys disabled) and the work queues that GPU workers consume, one per
// served model. One message per shard; the message id is the shard id, so duplicate detection drops a re-sent shard.

@description('Azure region.')
param location string

@description('Resource tags.')
param tags object

@description('Namespace name (globally unique).')
param namespaceName string

@description('Work queue names, one per served model.')
@minLength(1)
param queueNames string[]

@description('Peek-lock duration; the worker renews the lock while a shard runs (5 minutes is the Service Bus maximum).')
param lockDuration string

@description('Deliveries before a shard is dead-lettered with a reason.')
@minValue(1)
param maxDeliveryCount int

@description('Time a shard may wait in the queue before it expires and is dead-lettered.')
param messageTimeToLive string

@description('Window in which a re-sent message id is dropped as a duplicate.')
param duplicateDetectionWindow string

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  // Standard: duplicate detection needs it (Basic has no duplicate detection)
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queueName in queueNames: {
  parent: namespace
  name: queueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    requiresSession: false
    enablePartitioning: false
    maxSizeInMegabytes: 5120
  }
}]

output namespaceName string = namespace.name
output queueNames string[] = [for (queueName, i) in queueNames: queues[i].name]
// serviceBusEndpoint is https://<name>.servicebus.windows.net:443/ (the suffix differs per cloud)
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
