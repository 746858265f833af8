output "function_name" {
  description = "Cloud Function running adscore."
  value       = module.adscore.function_name
}

output "alerts_topic" {
  description = "Subscribe to this topic to receive the alerts."
  value       = module.adscore.alerts_topic
}

output "dead_letter_subscription" {
  description = "Where undeliverable log entries wait for inspection."
  value       = module.adscore.dead_letter_subscription
}

output "sink_writer_identity" {
  description = "Identity of the log sink."
  value       = module.adscore.sink_writer_identity
}

output "state_url" {
  description = "ADSCORE_STATE of the function."
  value       = module.adscore.state_url
}

output "webhook_secret_id" {
  description = "Secret holding the webhook signing key, or null."
  value       = module.adscore.webhook_secret_id
}
