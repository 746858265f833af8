output "function_name" {
  description = "Name of the Cloud Function (and of its Cloud Run service)."
  value       = google_cloudfunctions2_function.this.name
}

output "function_uri" {
  description = "URL of the function (internal ingress only; callers need roles/run.invoker)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "function_service_account" {
  description = "Email of the function's runtime service account."
  value       = google_service_account.function.email
}

output "log_topic" {
  description = "Pub/Sub topic the log sink writes to."
  value       = google_pubsub_topic.logs.id
}

output "dead_letter_topic" {
  description = "Pub/Sub dead-letter topic (messages the function could not process); held by the dead_letter_subscription."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Pull subscription keeping the dead letters for inspection and replay."
  value       = google_pubsub_subscription.dead_letter.id
}

output "alerts_topic" {
  description = "Pub/Sub topic the alerts are published to (attributes severity, technique, detection, alert_id)."
  value       = google_pubsub_topic.alerts.id
}

output "sink_writer_identity" {
  description = "Identity the log sink writes with (granted roles/pubsub.publisher on the log topic)."
  value       = local.sink_writer
}

output "firestore_database" {
  description = "Firestore database of the state."
  value       = google_firestore_database.state.name
}

output "state_url" {
  description = "ADSCORE_STATE of the function (also usable with `adscore replay --state`)."
  value       = local.state_url
}

output "webhook_secret_id" {
  description = "Secret Manager secret holding the webhook HMAC key (share it with the receiver), or null."
  value       = one(google_secret_manager_secret.webhook[*].id)
}

output "ingest_url" {
  description = "HTTPS URL of the ingest endpoint (kubeconfig clusters[].cluster.server, adscore forward docker --url); null unless enable_ingest_endpoint."
  value       = one(google_cloudfunctions2_function.ingest[*].service_config[0].uri)
}

output "ingest_secret_ids" {
  description = "Secret Manager secrets of the ingest bearer token (token) and Standard Webhooks signing secret (signing)."
  value       = { for k, s in google_secret_manager_secret.ingest : k => s.id }
}
