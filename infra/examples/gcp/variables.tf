variable "project_id" {
  description = "Project that runs adscore."
  type        = string
}

variable "region" {
  description = "Region of the function, e.g. europe-west1."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "adscore"
}

variable "source_zip_path" {
  description = "Path of the zip from `adscore package gcp`; null means dist/adscore-gcp-function.zip at the repository root."
  type        = string
  default     = null
}

variable "sink_level" {
  description = "project, folder or organization: where the log sink reads audit logs from."
  type        = string
  default     = "project"

  validation {
    condition     = contains(["project", "folder", "organization"], var.sink_level)
    error_message = "sink_level is project, folder or organization."
  }
}

variable "sink_parent_id" {
  description = "Numeric folder or organisation id when sink_level is folder or organization."
  type        = string
  default     = null
}

variable "enable_data_access_logs" {
  description = "Turn on ADMIN_READ and DATA_READ audit logs at the sink's level (needed for discovery; costs log ingestion)."
  type        = bool
  default     = false
}

variable "firestore_location" {
  description = "Location of the Firestore state database (eur3, nam5, or a region)."
  type        = string
  default     = "eur3"
}

variable "webhook_urls" {
  description = "Alert webhooks (https://, slack+https://, teams+https://) besides the alerts topic."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "create_webhook_secret" {
  description = "Create the webhook signing key in Secret Manager."
  type        = bool
  default     = false
}

variable "environment" {
  description = "More ADSCORE_* variables, e.g. detection thresholds."
  type        = map(string)
  default     = {}
}

variable "build_service_account" {
  description = "Service account email for Cloud Build (needed in projects where the default compute account may not build)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the Firestore database from deletion (set false, apply, then destroy)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource."
  type        = map(string)
  default = {
    application = "adscore"
  }
}
