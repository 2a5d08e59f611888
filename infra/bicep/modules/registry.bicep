// Azure Container Registry for the GPU worker image. Admin user and anonymous pull are off:
// the worker pulls with its managed identity (AcrPull).

@description('Azure region.')
param location string

@description('Resource tags.')
param tags object

@description('Registry name (5-50 letters and digits, globally unique).')
@minLength(5)
@maxLength(50)
param registryName string

@description('Registry SKU.')
@allowed(['Basic', 'Standard', 'Premium'])
param skuName string

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  name: registryName
  location: location
  tags: tags
  sku: { name: skuName }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

output registryName string = registry.name
output loginServer string = registry.properties.loginServer
