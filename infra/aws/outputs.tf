output "function_names" {
  description = "Lambda function names by delivery shape (eventbridge, sqs, cwlogs); only the ones with a delivery path exist."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "function_arns" {
  description = "Lambda function ARNs by delivery shape."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "function_role_arns" {
  description = "IAM role ARNs of the functions (grant them s3:GetObject in a cross-account CloudTrail bucket policy)."
  value       = { for k, r in aws_iam_role.function : k => r.arn }
}

output "state_table_name" {
  description = "DynamoDB state table (ADSCORE_STATE=dynamodb://<name>)."
  value       = aws_dynamodb_table.state.name
}

output "state_table_arn" {
  description = "ARN of the DynamoDB state table."
  value       = aws_dynamodb_table.state.arn
}

output "alerts_topic_arn" {
  description = "SNS topic the alerts are published to (message attributes severity and technique for subscription filters)."
  value       = aws_sns_topic.alerts.arn
}

output "alarms_topic_arn" {
  description = "SNS topic the operational alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_arn" {
  description = "Customer managed KMS key of the module's data (table, topics, queues, logs, secret, parameter); SNS subscribers such as SQS queues in other accounts need kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}

output "webhook_secret_arn" {
  description = "Secrets Manager secret holding the webhook signing key (ADSCORE_WEBHOOK_SECRET), or null."
  value       = local.webhook_secret_arn
}

output "config_parameter_name" {
  description = "SSM parameter holding the settings YAML (ADSCORE_CONFIG), or null."
  value       = local.config_parameter
}

output "events_queue_url" {
  description = "SQS queue of the discovery rule's events, or null."
  value       = one(aws_sqs_queue.events[*].url)
}

output "cloudtrail_queue_arn" {
  description = "SQS queue that receives the CloudTrail bucket's object-created notifications, or null; add it to the bucket's notifications yourself when manage_cloudtrail_bucket_notification is false or the bucket is in another account."
  value       = one(aws_sqs_queue.cloudtrail[*].arn)
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues: failed_invocations (asynchronous invocations and undeliverable rule events), unreadable (records no parser can read, with their bytes and reason, from every function: ADSCORE_DEADLETTER) and redrive (SQS messages that failed max_receive_count times)."
  value = merge(
    { failed_invocations = aws_sqs_queue.failed_invocations.url, unreadable = aws_sqs_queue.unreadable.url },
    { for q in aws_sqs_queue.redrive_dlq : "redrive" => q.url },
  )
}

output "event_rule_arns" {
  description = "EventBridge rule ARNs by rule (snapshot, discovery) and bus (default, organization)."
  value = {
    snapshot  = { for k, r in aws_cloudwatch_event_rule.snapshot : k => r.arn }
    discovery = { for k, r in aws_cloudwatch_event_rule.discovery : k => r.arn }
  }
}

output "organization_event_bus_arn" {
  description = "Event bus the organisation's accounts forward their CloudTrail events to, or null."
  value       = one(aws_cloudwatch_event_bus.organization[*].arn)
}

output "ingest_url" {
  description = "HTTPS URL of the ingest endpoint (kubeconfig clusters[].cluster.server, adscore forward docker --url); null unless enable_ingest_endpoint."
  value       = one(aws_lambda_function_url.ingest[*].function_url)
}

output "ingest_secret_arns" {
  description = "Secrets Manager ARNs of the ingest bearer token (token) and Standard Webhooks signing secret (signing)."
  value       = { for k, s in aws_secretsmanager_secret.ingest : k => s.arn }
}
