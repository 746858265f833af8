output "function_names" {
  description = "Lambda functions deployed."
  value       = module.adscore.function_names
}

output "alerts_topic_arn" {
  description = "Subscribe here to receive the alerts."
  value       = module.adscore.alerts_topic_arn
}

output "alarms_topic_arn" {
  description = "Subscribe here to receive the operational alarms."
  value       = module.adscore.alarms_topic_arn
}

output "state_table_name" {
  description = "DynamoDB state table (adscore replay --state dynamodb://<name> reads it)."
  value       = module.adscore.state_table_name
}

output "webhook_secret_arn" {
  description = "Secret holding the webhook signing key, or null."
  value       = module.adscore.webhook_secret_arn
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues to watch and redrive."
  value       = module.adscore.dead_letter_queue_urls
}

output "organization_event_bus_arn" {
  description = "Target of the member accounts' forwarding rules, or null."
  value       = module.adscore.organization_event_bus_arn
}

output "cloudtrail_queue_arn" {
  description = "Queue of the CloudTrail bucket notifications, or null."
  value       = module.adscore.cloudtrail_queue_arn
}
