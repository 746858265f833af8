# adscore on Google Cloud: a Cloud Function (2nd gen) built from the `adscore package gcp` zip, fed by a
# log sink (project, folder or organisation) through a Pub/Sub topic and an authenticated push
# subscription with a dead-letter topic; Firestore state with a TTL policy; Secret Manager for the
# sinks and the webhook key; one service account per role, each granted only what it uses.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Log sink filter generated from src/adscore/actions.py by scripts/gen_infra_filters.py.
  sink = jsondecode(file("${path.module}/generated/log_sink_filter.json"))

  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  apis = toset([
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "artifactregistry.googleapis.com",
    "run.googleapis.com",
    "pubsub.googleapis.com",
    "logging.googleapis.com",
    "firestore.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  sink_writer = one(concat(
    google_logging_project_sink.this[*].writer_identity,
    google_logging_folder_sink.this[*].writer_identity,
    google_logging_organization_sink.this[*].writer_identity,
  ))

  # Alerts go to the alerts topic (and the function logs) and to the webhooks.
  sinks          = join(",", concat(["pubsub://${google_pubsub_topic.alerts.id}"], var.webhook_urls))
  sinks_secret   = nonsensitive(length(var.webhook_urls)) > 0 # how many URLs is not a secret; count needs it plain
  state_url      = "firestore://${var.state_collection}?database=${google_firestore_database.state.name}&project=${var.project_id}"
  source_object  = "adscore-gcp-function-${filemd5(var.source_zip_path)}.zip"
  function_name  = var.name_prefix
  secrets_in_env = merge(
    local.sinks_secret ? { ADSCORE_SINKS = google_secret_manager_secret.sinks[0].secret_id } : {},
    var.create_webhook_secret ? { ADSCORE_WEBHOOK_SECRET = google_secret_manager_secret.webhook[0].secret_id } : {},
  )
  ingest_secrets = { for k, v in google_secret_manager_secret.ingest : (k == "token" ? "ADSCORE_INGEST_TOKEN" : "ADSCORE_INGEST_SIGNING_SECRET") => v.secret_id }
  environment = merge(
    var.environment,
    {
      ADSCORE_STATE        = local.state_url
      ADSCORE_DEADLETTER   = "pubsub://${google_pubsub_topic.dead_letter.id}"
      GOOGLE_CLOUD_PROJECT = var.project_id
    },
    local.sinks_secret ? {} : { ADSCORE_SINKS = local.sinks },
  )
}

resource "google_project_service" "this" {
  for_each           = var.enable_apis ? local.apis : toset([])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ------------------------------------------------------------------------------------------------
# Service accounts: the function's runtime identity, and the identity Pub/Sub pushes with
# ------------------------------------------------------------------------------------------------

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-function"
  display_name = "adscore function runtime"
  description  = "Reads and writes the adscore Firestore database, publishes alerts and dead letters, reads its secrets."
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "adscore push subscription"
  description  = "Identity of the OIDC tokens the log subscription pushes to the adscore function with; may only invoke it."
}

# ------------------------------------------------------------------------------------------------
# Pub/Sub: log topic, authenticated push subscription, dead letters, alerts
# ------------------------------------------------------------------------------------------------

resource "google_pubsub_topic" "logs" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-audit-logs"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"
  labels                     = var.labels
  depends_on                 = [google_project_service.this]
}

resource "google_pubsub_topic" "dead_letter" {
  project      = var.project_id
  name         = "${var.name_prefix}-dead-letter"
  kms_key_name = var.kms_key_name
  labels       = var.labels
  depends_on   = [google_project_service.this]
}

resource "google_pubsub_topic" "alerts" {
  project      = var.project_id
  name         = "${var.name_prefix}-alerts"
  kms_key_name = var.kms_key_name
  labels       = var.labels
  depends_on   = [google_project_service.this]
}

resource "google_pubsub_subscription" "push" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-audit-logs-push"
  topic                      = google_pubsub_topic.logs.id
  ack_deadline_seconds       = min(600, var.function_timeout_seconds + 60)
  message_retention_duration = "604800s"
  labels                     = var.labels

  push_config {
    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_agent]
}

# Dead letters are kept (7 days) until someone reads or replays them.
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "sink_writer" {
  project = var.project_id
  topic   = google_pubsub_topic.logs.name
  role    = "roles/pubsub.publisher"
  member  = local.sink_writer
}

# Pub/Sub's service agent moves undeliverable messages: publish to the dead-letter topic, and
# acknowledge them on the push subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_agent" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "push_agent" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Pub/Sub mints the push OIDC token as the invoker account (needed in projects made before 2021-04).
resource "google_service_account_iam_member" "invoker_token" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = {
    alerts      = google_pubsub_topic.alerts.name
    dead_letter = google_pubsub_topic.dead_letter.name
  }
  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member
}

# ------------------------------------------------------------------------------------------------
# Log sink (project, folder or organisation) and the Data Access audit logs discovery needs
# ------------------------------------------------------------------------------------------------

resource "google_logging_project_sink" "this" {
  count                  = var.sink_level == "project" ? 1 : 0
  project                = var.project_id
  name                   = "${var.name_prefix}-audit"
  description            = "adscore: snapshot and discovery audit entries (filter generated from src/adscore/actions.py)"
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.logs.id}"
  filter                 = local.sink.filter
  unique_writer_identity = true
}

resource "google_logging_folder_sink" "this" {
  count            = var.sink_level == "folder" ? 1 : 0
  folder           = var.sink_parent_id
  name             = "${var.name_prefix}-audit"
  description      = "adscore: snapshot and discovery audit entries (filter generated from src/adscore/actions.py)"
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.logs.id}"
  filter           = local.sink.filter
  include_children = true
}

resource "google_logging_organization_sink" "this" {
  count            = var.sink_level == "organization" ? 1 : 0
  org_id           = var.sink_parent_id
  name             = "${var.name_prefix}-audit"
  description      = "adscore: snapshot and discovery audit entries (filter generated from src/adscore/actions.py)"
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.logs.id}"
  filter           = local.sink.filter
  include_children = true
}

resource "google_project_iam_audit_config" "data_access" {
  count   = var.enable_data_access_logs && var.sink_level == "project" ? 1 : 0
  project = var.project_id
  service = "allServices"
  audit_log_config {
    log_type = "ADMIN_READ"
  }
  audit_log_config {
    log_type = "DATA_READ"
  }
}

resource "google_folder_iam_audit_config" "data_access" {
  count   = var.enable_data_access_logs && var.sink_level == "folder" ? 1 : 0
  folder  = "folders/${var.sink_parent_id}"
  service = "allServices"
  audit_log_config {
    log_type = "ADMIN_READ"
  }
  audit_log_config {
    log_type = "DATA_READ"
  }
}

resource "google_organization_iam_audit_config" "data_access" {
  count   = var.enable_data_access_logs && var.sink_level == "organization" ? 1 : 0
  org_id  = var.sink_parent_id
  service = "allServices"
  audit_log_config {
    log_type = "ADMIN_READ"
  }
  audit_log_config {
    log_type = "DATA_READ"
  }
}

# ------------------------------------------------------------------------------------------------
# State: Firestore database, TTL policy on expire_time (src/adscore/state/firestore.py)
# ------------------------------------------------------------------------------------------------

resource "google_firestore_database" "state" {
  project                           = var.project_id
  name                              = var.firestore_database
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = "DELETE"

  dynamic "cmek_config" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = cmek_config.value
    }
  }

  depends_on = [google_project_service.this]
}

# expire_time = expires_at + 30 days: Firestore deletes a document only long after readers ignore it.
resource "google_firestore_field" "ttl" {
  project    = var.project_id
  database   = google_firestore_database.state.name
  collection = var.state_collection
  field      = "expire_time"

  ttl_config {}

  # A TTL timestamp needs no index (and a monotonically growing indexed field is a write hotspot).
  index_config {}
}

resource "google_project_iam_member" "function_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.function.member

  condition {
    title       = "adscore-state-database-only"
    description = "Only the adscore Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.state.name}\""
  }
}

# ------------------------------------------------------------------------------------------------
# Secrets: the sinks (webhook URLs are credentials) and the webhook signing key
# ------------------------------------------------------------------------------------------------

resource "random_password" "webhook" {
  count   = var.create_webhook_secret ? 1 : 0
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "webhook" {
  count     = var.create_webhook_secret ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name_prefix}-webhook-secret"
  labels    = var.labels

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "webhook" {
  count       = var.create_webhook_secret ? 1 : 0
  secret      = google_secret_manager_secret.webhook[0].id
  secret_data = random_password.webhook[0].result
}

resource "google_secret_manager_secret" "sinks" {
  count     = local.sinks_secret ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name_prefix}-sinks"
  labels    = var.labels

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "sinks" {
  count       = local.sinks_secret ? 1 : 0
  secret      = google_secret_manager_secret.sinks[0].id
  secret_data = local.sinks
}

# The ingest endpoint's credentials: API servers' bearer token, forwarders' Standard Webhooks secret.
resource "random_password" "ingest_token" {
  count   = var.enable_ingest_endpoint ? 1 : 0
  length  = 48
  special = false
}

resource "random_id" "ingest_signing" {
  count       = var.enable_ingest_endpoint ? 1 : 0
  byte_length = 32
}

resource "google_secret_manager_secret" "ingest" {
  for_each  = var.enable_ingest_endpoint ? toset(["token", "signing"]) : toset([])
  project   = var.project_id
  secret_id = "${var.name_prefix}-ingest-${each.key}"
  labels    = var.labels

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "ingest" {
  for_each    = google_secret_manager_secret.ingest
  secret      = each.value.id
  secret_data = each.key == "token" ? random_password.ingest_token[0].result : "whsec_${random_id.ingest_signing[0].b64_std}"
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each  = merge(local.secrets_in_env, local.ingest_secrets)
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

# ------------------------------------------------------------------------------------------------
# Function: source bucket, Cloud Function (2nd gen), invoker binding
# ------------------------------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access to the source bucket is recorded by Cloud Audit Logs (Data Access for storage when enabled); legacy usage logs would need a second bucket.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 5
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_storage_bucket_object" "source" {
  # Named by content, so a new build is a new object and Terraform redeploys the function.
  name   = local.source_object
  bucket = google_storage_bucket.source.name
  source = var.source_zip_path
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = local.function_name
  description = "adscore: snapshot (T1578.001) and cloud service discovery (T1526) detections on audit logs"
  labels      = var.labels

  build_config {
    runtime         = var.python_runtime
    entry_point     = "on_pubsub_push"
    service_account = var.build_service_account == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build_service_account}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    available_memory                 = var.function_memory
    timeout_seconds                  = var.function_timeout_seconds
    # Only Pub/Sub (same project) and the VPC reach it; every request also needs run.invoker.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function.email
    environment_variables          = local.environment

    dynamic "secret_environment_variables" {
      for_each = local.secrets_in_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.this,
    google_secret_manager_secret_iam_member.function,
    google_secret_manager_secret_version.sinks,
    google_secret_manager_secret_version.webhook,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

# ------------------------------------------------------------------------------------------------
# Ingest endpoint: the same source, entry point on_k8s_audit, reachable from anywhere over HTTPS
# ------------------------------------------------------------------------------------------------

# Self-managed API servers and Docker hosts are outside Google: they cannot present a Google identity
# token, so the service admits anyone (allUsers run.invoker) and the function authenticates each
# request itself (bearer token or Standard Webhooks signature), refusing the rest with 401.
resource "google_cloudfunctions2_function" "ingest" {
  count       = var.enable_ingest_endpoint ? 1 : 0
  project     = var.project_id
  location    = var.region
  name        = "${local.function_name}-ingest"
  description = "adscore: HTTPS ingest endpoint (Kubernetes audit webhook, adscore forward docker)"
  labels      = var.labels

  build_config {
    runtime         = var.python_runtime
    entry_point     = "on_k8s_audit"
    service_account = var.build_service_account == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build_service_account}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    available_memory                 = var.function_memory
    timeout_seconds                  = var.function_timeout_seconds
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function.email
    environment_variables            = merge(local.environment, { ADSCORE_INGEST_MAX_BYTES = tostring(var.ingest_max_bytes) })

    dynamic "secret_environment_variables" {
      for_each = merge(local.secrets_in_env, local.ingest_secrets)
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.this,
    google_secret_manager_secret_iam_member.function,
    google_secret_manager_secret_version.ingest,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "ingest_public" {
  #checkov:skip=CKV_GCP_102:API servers and Docker hosts outside Google cannot present an identity token; the function refuses any request without the bearer token or a valid Standard Webhooks signature (401).
  count    = var.enable_ingest_endpoint ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.ingest[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
