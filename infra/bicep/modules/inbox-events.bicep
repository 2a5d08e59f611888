// The inbox: a blob created in the inbox container becomes a job. The storage account's Event Grid system topic
// (modules/storage.bicep) sends each BlobCreated event of that container to the Storage queue the Functions inbox
// trigger reads. Delivery uses the topic's system-assigned identity (Storage Queue Data Message Sender on that one
// queue, modules/rbac.bicep), so no key is involved; a webhook subscription to the Event Grid blob trigger instead
// would need the Functions host's blobs_extension system key in the template. Event Grid schema: the system topic's
// own, one event per queue message ({id, subject, eventType, data: {url, eTag, api, ...}}), what
// VicunaBatch.Functions' BlobCreatedEvent parses. Event Grid retries a failed delivery (up to 30 attempts within
// 24 h), which also covers the minutes a new role assignment takes to apply.

@description('Storage account whose system topic publishes the events, and whose queue receives them.')
param storageAccountName string

@description('Name of that account\'s Event Grid system topic.')
param eventGridTopicName string

@description('Blob container whose new blobs become jobs.')
param inboxContainerName string

@description('Storage queue the events go to (the Functions inbox trigger).')
param queueName string

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource eventGridTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: eventGridTopicName
}

resource inboxEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: eventGridTopic
  name: 'inbox-to-queue'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${inboxContainerName}/'
    }
    deliveryWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storage.id
          queueName: queueName
        }
      }
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}
