output "function_app_name" {
  description = "Function App running adscore."
  value       = module.adscore.function_app_name
}

output "state_table_name" {
  description = "State table in the data storage account."
  value       = module.adscore.state_table_name
}

output "data_storage_account_name" {
  description = "Storage account with the state table and the dead letters."
  value       = module.adscore.data_storage_account_name
}

output "dead_letter_containers" {
  description = "Dead-letter containers to watch."
  value       = module.adscore.dead_letter_containers
}

output "key_vault_name" {
  description = "Key Vault with the sinks and the webhook signing key."
  value       = module.adscore.key_vault_name
}

output "eventhub_authorization_rule_id" {
  description = "Use it for more diagnostic settings streaming to adscore's Event Hub."
  value       = module.adscore.eventhub_authorization_rule_id
}

output "eventhub_name" {
  description = "Event Hub of those diagnostic settings."
  value       = module.adscore.eventhub_name
}
