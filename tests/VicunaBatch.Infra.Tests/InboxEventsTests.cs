using System.Text.Json.Nodes;

namespace VicunaBatch.Infra.Tests;

/// <summary>A blob created in the inbox container reaches the Functions inbox trigger: the storage account's Event Grid
/// system topic sends its BlobCreated events, and only those, to the inbox-events queue with its own identity (no key),
/// and the app reads that queue by the setting the trigger names.</summary>
[Collection(BicepCollection.Name)]
public sealed class InboxEventsTests(BicepFixture bicep)
{
    private const string QueueVariable = "[variables('inboxEventsQueueName')]";
    private const string TopicVariable = "[variables('names').eventGridTopic]";

    [Fact]
    public void Storage_account_has_a_system_topic_with_a_system_assigned_identity()
    {
        var (storage, parameters) = bicep.Main.Module("storage");
        var topic = storage.OfType("Microsoft.EventGrid/systemTopics").Single().Resource;

        Assert.Equal("Microsoft.Storage.StorageAccounts", (string?)topic["properties"]!["topicType"]);
        Assert.Equal("[resourceId('Microsoft.Storage/storageAccounts', parameters('accountName'))]", (string?)topic["properties"]!["source"]);
        Assert.Equal("SystemAssigned", (string?)topic["identity"]!["type"]);
        Assert.Equal("[parameters('eventGridTopicName')]", (string?)topic["name"]);
        Assert.Equal(TopicVariable, (string?)parameters["eventGridTopicName"]!["value"]);
    }

    [Fact]
    public void Subscription_sends_inbox_blob_created_events_to_the_inbox_events_queue_with_the_topic_identity()
    {
        var (module, parameters) = bicep.Main.Module("inbox-events");
        var subscription = module.OfType("Microsoft.EventGrid/systemTopics/eventSubscriptions").Single().Resource;
        var properties = subscription["properties"]!;

        Assert.StartsWith("[format('{0}/{1}', parameters('eventGridTopicName'), ", (string?)subscription["name"]);
        Assert.Equal(TopicVariable, (string?)parameters["eventGridTopicName"]!["value"]);
        // the schema VicunaBatch.Functions' BlobCreatedEvent parses
        Assert.Equal("EventGridSchema", (string?)properties["eventDeliverySchema"]);

        var filter = properties["filter"]!;
        Assert.Equal(["Microsoft.Storage.BlobCreated"], filter["includedEventTypes"]!.AsArray().Select(t => (string)t!));
        Assert.Equal("[format('/blobServices/default/containers/{0}/', parameters('inboxContainerName'))]", (string?)filter["subjectBeginsWith"]);
        Assert.Equal("[variables('containers').inbox]", (string?)parameters["inboxContainerName"]!["value"]);
        Assert.Equal("inbox", bicep.Main.Literal("[variables('containers').inbox]"));

        Assert.Null(properties["destination"]); // delivery without identity would need the queue open to the topic otherwise
        var delivery = properties["deliveryWithResourceIdentity"]!;
        Assert.Equal("SystemAssigned", (string?)delivery["identity"]!["type"]);
        Assert.Equal("StorageQueue", (string?)delivery["destination"]!["endpointType"]);
        var queue = delivery["destination"]!["properties"]!;
        Assert.Equal("[resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))]", (string?)queue["resourceId"]);
        Assert.Equal("[variables('names').storage]", (string?)parameters["storageAccountName"]!["value"]);
        Assert.Equal("[parameters('queueName')]", (string?)queue["queueName"]);
        Assert.Equal(QueueVariable, (string?)parameters["queueName"]!["value"]);
        Assert.Equal("inbox-events", bicep.Main.Literal(QueueVariable));
    }

    [Fact]
    public void Subscription_is_created_after_the_role_that_lets_the_topic_send()
    {
        var deployment = bicep.Main.OfType("Microsoft.Resources/deployments").Single(r => (string?)r.Resource["name"] == "inbox-events").Resource;

        Assert.Contains("rbac", deployment["dependsOn"]!.AsArray().Select(d => (string)d!)); // the module's symbolic name
        Assert.Equal(TopicVariable, (string?)bicep.Main.Module("rbac").Parameters["eventGridTopicName"]!["value"]);
        Assert.Equal(QueueVariable, (string?)bicep.Main.Module("rbac").Parameters["inboxEventsQueueName"]!["value"]);
    }

    [Fact]
    public void Inbox_events_queue_and_its_poison_queue_exist_and_the_app_reads_it()
    {
        var queues = bicep.Main.Module("storage").Parameters["queueNames"]!["value"]!.AsArray().Select(q => (string)q!).ToArray();
        Assert.Contains(QueueVariable, queues);
        Assert.Contains("[format('{0}-poison', variables('inboxEventsQueueName'))]", queues);

        var (functions, parameters) = bicep.Main.Module("functions");
        var settings = functions.Json["variables"]!["appSettings"]!.AsObject();
        // the inbox trigger's [QueueTrigger("%Storage:Queues:InboxEvents%", Connection = "ControlQueues")]
        Assert.Equal("[parameters('inboxEventsQueueName')]", (string?)settings["Storage__Queues__InboxEvents"]);
        Assert.Equal(QueueVariable, (string?)parameters["inboxEventsQueueName"]!["value"]);
        Assert.Equal("[parameters('queueEndpoint')]", (string?)settings["ControlQueues__queueServiceUri"]);
        Assert.Equal("[variables('identityConnection').credential]", (string?)settings["ControlQueues__credential"]);
    }

    [Fact]
    public void Nothing_subscribes_a_webhook_to_the_function_app()
    {
        foreach (var template in bicep.Main.SelfAndModules())
            foreach (var (key, subscription) in template.OfType("Microsoft.EventGrid/systemTopics/eventSubscriptions"))
            {
                JsonNode? properties = subscription["properties"];
                var endpointType = (string?)(properties?["deliveryWithResourceIdentity"]?["destination"] ?? properties?["destination"])?["endpointType"];
                Assert.True(endpointType == "StorageQueue", $"{key}: endpoint {endpointType}");
            }
    }
}
