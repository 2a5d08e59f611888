// Key Vault with Azure RBAC authorization (no access policies) for API keys and webhook signing secrets.
// The template creates no secrets: their values never pass through a deployment.

@description('Azure region.')
param location string

@description('Resource tags.')
param tags object

@description('Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param vaultName string

@description('Purge protection (cannot be turned off once on: use it in prod).')
param enablePurgeProtection bool

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // the API refuses an explicit false: leave it unset instead
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

output vaultName string = vault.name
output vaultUri string = vault.properties.vaultUri
