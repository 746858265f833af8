# ------------------------------------------------------------------------------------------------
# Placement, naming and packaging
# ------------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Project that runs adscore (function, topics, Firestore database, secrets)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 lowercase letters, digits and hyphens)."
  }
}

variable "region" {
  description = "Region of the function and of the source bucket, e.g. europe-west1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region looks like europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "adscore"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-20 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "source_zip_path" {
  description = "Path of the source zip built by `adscore package gcp --out dist` (dist/adscore-gcp-function.zip)."
  type        = string

  validation {
    condition     = endswith(var.source_zip_path, ".zip")
    error_message = "source_zip_path must name the .zip that `adscore package gcp` wrote."
  }
}

variable "python_runtime" {
  description = "Cloud Functions Python runtime that builds the source zip (its requirements.txt is the lock's export, checked for python311)."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.python_runtime)
    error_message = "python_runtime is python311, python312 or python313."
  }
}

variable "enable_apis" {
  description = "Enable the Google APIs the module uses (never disabled on destroy)."
  type        = bool
  default     = true
}

variable "build_service_account" {
  description = "Service account email Cloud Build uses to build the function (projects created since 2024 no longer let the default Compute Engine account build). Null uses the project default."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^[^@\\s]+@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", var.build_service_account))
    error_message = "build_service_account must be a service account email."
  }
}

variable "function_memory" {
  description = "Memory of each function instance (Cloud Run format, e.g. 512Mi, 1Gi)."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.function_memory))
    error_message = "function_memory looks like 512Mi or 1Gi."
  }
}

variable "function_timeout_seconds" {
  description = "Request timeout of the function, in seconds (the push subscription's ack deadline is set above it)."
  type        = number
  default     = 300

  validation {
    condition     = var.function_timeout_seconds >= 10 && var.function_timeout_seconds <= 540
    error_message = "function_timeout_seconds is between 10 and 540."
  }
}

variable "max_instances" {
  description = "Most function instances at once: a ceiling on cost and on the write rate to Firestore."
  type        = number
  default     = 20

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000
    error_message = "max_instances is between 1 and 1000."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for CMEK on the topics, the source bucket, the secrets and the Firestore database. The Google service agents of Pub/Sub, Cloud Storage, Secret Manager and Firestore need roles/cloudkms.cryptoKeyEncrypterDecrypter on it. Null uses Google-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be a Cloud KMS crypto key name."
  }
}

# ------------------------------------------------------------------------------------------------
# State
# ------------------------------------------------------------------------------------------------

variable "firestore_database" {
  description = "Firestore database created for the state (a named database keeps adscore out of the project's (default) one)."
  type        = string
  default     = "adscore"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database: 4-63 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database: a multi-region (eur3, nam5) or a region (europe-west1)."
  type        = string
  default     = "eur3"
}

variable "state_collection" {
  description = "Firestore collection of the state documents (ADSCORE_STATE=firestore://<collection>); its expire_time field gets a TTL policy."
  type        = string
  default     = "adscore-state"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.~-]{1,128}$", var.state_collection)) && !can(regex("^__.*__$", var.state_collection))
    error_message = "state_collection is 1-128 of A-Z a-z 0-9 _ . ~ - and not __name__."
  }
}

variable "deletion_protection" {
  description = "Protect the Firestore database from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

# ------------------------------------------------------------------------------------------------
# Log sink
# ------------------------------------------------------------------------------------------------

variable "sink_level" {
  description = "Where the log sink is created: project (var.project_id), folder or organization (sink_parent_id). Folder and organisation sinks include their children."
  type        = string
  default     = "project"

  validation {
    condition     = contains(["project", "folder", "organization"], var.sink_level)
    error_message = "sink_level is project, folder or organization."
  }
}

variable "sink_parent_id" {
  description = "Numeric folder or organisation id of the sink (and of the Data Access audit config) when sink_level is folder or organization."
  type        = string
  default     = null

  validation {
    condition     = var.sink_parent_id == null || can(regex("^[0-9]{6,20}$", var.sink_parent_id))
    error_message = "sink_parent_id is a numeric folder or organisation id (no folders/ or organizations/ prefix)."
  }

  validation {
    condition     = var.sink_level == "project" || var.sink_parent_id != null
    error_message = "sink_parent_id is required when sink_level is folder or organization."
  }
}

variable "enable_data_access_logs" {
  description = "Turn on ADMIN_READ and DATA_READ Data Access audit logs for allServices at the sink's level. Discovery (list and get calls) is only visible with them, and they can be voluminous (Cloud Logging charges for ingestion). The config is authoritative for allServices at that level: it replaces an existing allServices audit config there."
  type        = bool
  default     = false
}

# ------------------------------------------------------------------------------------------------
# Delivery and alerts
# ------------------------------------------------------------------------------------------------

variable "max_delivery_attempts" {
  description = "Deliveries of a Pub/Sub message to the function before it goes to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts is between 5 and 100."
  }
}

variable "webhook_urls" {
  description = "Alert webhooks besides the alerts topic: https://... (signed JSON), slack+https://..., teams+https://... They are credentials: ADSCORE_SINKS is stored in Secret Manager and exposed to the function as a secret environment variable."
  type        = list(string)
  default     = []
  sensitive   = true

  validation {
    condition     = alltrue([for u in var.webhook_urls : can(regex("^(https|slack\\+https|teams\\+https)://", u))])
    error_message = "webhook_urls start with https://, slack+https:// or teams+https://."
  }
}

variable "create_webhook_secret" {
  description = "Create a Secret Manager secret holding the webhook HMAC signing key (random first version; add versions to rotate) and expose it as ADSCORE_WEBHOOK_SECRET."
  type        = bool
  default     = false
}

variable "environment" {
  description = "More ADSCORE_* variables, e.g. { ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD = \"8\" }. The module's own cannot be overridden."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^ADSCORE_[A-Z0-9_]+$", k))])
    error_message = "environment keys are ADSCORE_* variable names (upper case)."
  }

  validation {
    condition     = length(setintersection(keys(var.environment), ["ADSCORE_STATE", "ADSCORE_SINKS", "ADSCORE_WEBHOOK_SECRET", "ADSCORE_DEADLETTER", "ADSCORE_DEADLETTER_TOPIC"])) == 0
    error_message = "environment cannot set ADSCORE_STATE, ADSCORE_SINKS, ADSCORE_WEBHOOK_SECRET, ADSCORE_DEADLETTER or ADSCORE_DEADLETTER_TOPIC: the module sets them."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "enable_ingest_endpoint" {
  description = "Deploy the HTTPS ingest endpoint (function <name_prefix>-ingest, entry point on_k8s_audit, public) for self-managed Kubernetes audit webhooks and adscore forward docker, with its bearer token and signing secret in Secret Manager."
  type        = bool
  default     = false
}

variable "ingest_max_bytes" {
  description = "Largest request body the ingest endpoint reads (ADSCORE_INGEST_MAX_BYTES); Cloud Functions stop at 32 MB."
  type        = number
  default     = 4194304

  validation {
    condition     = var.ingest_max_bytes >= 1024 && var.ingest_max_bytes <= 33554432
    error_message = "ingest_max_bytes must be between 1024 and 33554432 (the Cloud Functions request limit)."
  }
}
