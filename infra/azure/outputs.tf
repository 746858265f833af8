output "function_app_name" {
  description = "Name of the Function App."
  value       = azurerm_linux_function_app.this.name
}

output "function_app_id" {
  description = "Resource id of the Function App."
  value       = azurerm_linux_function_app.this.id
}

output "function_principal_id" {
  description = "Object id of the Function App's system-assigned identity (every role it holds is assigned by this module)."
  value       = azurerm_linux_function_app.this.identity[0].principal_id
}

output "state_table_name" {
  description = "State table (ADSCORE_STATE=azuretable://<name>?endpoint=...)."
  value       = azapi_resource.state_table.name
}

output "data_storage_account_name" {
  description = "Storage account holding the state table and the dead-letter containers."
  value       = azurerm_storage_account.data.name
}

output "dead_letter_containers" {
  description = "Blob containers of dead letters: function (records the function could not process) and event_grid (events Event Grid could not deliver)."
  value = {
    function   = azurerm_storage_container.function_dead_letter.name
    event_grid = azurerm_storage_container.grid_dead_letter.name
  }
}

output "key_vault_name" {
  description = "Key Vault holding the sinks and the webhook signing key."
  value       = azurerm_key_vault.this.name
}

output "webhook_secret_name" {
  description = "Key Vault secret holding the webhook HMAC key (share it with the receiver), or null."
  value       = one(azurerm_key_vault_secret.webhook[*].name)
}

output "eventhub_namespace_name" {
  description = "Event Hub namespace the diagnostic settings stream to."
  value       = azurerm_eventhub_namespace.this.name
}

output "eventhub_name" {
  description = "Event Hub the diagnostic settings stream to."
  value       = azurerm_eventhub.logs.name
}

output "eventhub_authorization_rule_id" {
  description = "Namespace authorization rule for more diagnostic settings (other resources, other subscriptions of the tenant) streaming to the same hub."
  value       = azurerm_eventhub_namespace_authorization_rule.diagnostics.id
}

output "event_grid_system_topic_name" {
  description = "Event Grid system topic of the subscription the operations subscriptions are attached to."
  value       = local.system_topic_name
}

output "application_insights_id" {
  description = "Application Insights component receiving the function's logs and alerts."
  value       = azurerm_application_insights.this.id
}

output "ingest_url" {
  description = "HTTPS URL of the ingest endpoint (kubeconfig clusters[].cluster.server, adscore forward docker --url); null unless enable_ingest_endpoint."
  value       = var.enable_ingest_endpoint ? "https://${azurerm_linux_function_app.this.default_hostname}/api/ingest" : null
}

output "ingest_secret_ids" {
  description = "Key Vault secret ids of the ingest bearer token (token) and Standard Webhooks signing secret (signing)."
  value       = { for k, s in azurerm_key_vault_secret.ingest : k => s.versionless_id }
}
