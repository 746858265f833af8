# ------------------------------------------------------------------------------------------------
# Placement, naming and packaging
# ------------------------------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every resource name. Lowercase letters and digits only: it goes into storage account names."
  type        = string
  default     = "adscore"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,11}$", var.name_prefix))
    error_message = "name_prefix: 3-12 lowercase letters and digits, starting with a letter."
  }
}

variable "resource_group_name" {
  description = "Existing resource group for every resource of the module (in the subscription the azurerm provider points at, which is also the subscription the Event Grid system topic watches)."
  type        = string

  validation {
    condition     = can(regex("^[-\\w._()]{1,90}$", var.resource_group_name))
    error_message = "resource_group_name must be a resource group name (1-90 characters)."
  }
}

variable "location" {
  description = "Azure region of the resources, e.g. westeurope."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location is a region name without spaces, e.g. westeurope."
  }
}

variable "package_path" {
  description = "Path of the zip built by `adscore package azure --out dist` (dist/adscore-azure-functions.zip)."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must name the .zip that `adscore package azure` wrote."
  }
}

variable "python_version" {
  description = "Python version of the Function App's Linux workers; the zip's wheels (`adscore package azure`) are built for 3.11."
  type        = string
  default     = "3.11"

  validation {
    condition     = contains(["3.11"], var.python_version)
    error_message = "python_version is 3.11: the package's compiled wheels (pydantic-core, orjson, cryptography) are built for CPython 3.11."
  }
}

variable "plan_sku_name" {
  description = "App Service plan SKU of the Function App: Y1 (Linux Consumption), EP1-EP3 (Elastic Premium), or a dedicated SKU."
  type        = string
  default     = "Y1"

  validation {
    condition     = contains(["Y1", "EP1", "EP2", "EP3", "B1", "B2", "B3", "S1", "S2", "S3", "P0v3", "P1v3", "P2v3", "P3v3"], var.plan_sku_name)
    error_message = "plan_sku_name is Y1, EP1-EP3, B1-B3, S1-S3 or P0v3-P3v3."
  }
}

variable "storage_replication_type" {
  description = "Replication of the two storage accounts (function host, state and dead letters)."
  type        = string
  default     = "GZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type is LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "state_table_name" {
  description = "Name of the state table (ADSCORE_STATE=azuretable://<name>)."
  type        = string
  default     = "adscorestate"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9]{2,62}$", var.state_table_name)) && lower(var.state_table_name) != "tables"
    error_message = "state_table_name: 3-63 letters and digits, starting with a letter, not 'tables'."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace behind Application Insights, in days."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days is between 30 and 730."
  }
}

variable "grant_deployer_access" {
  description = "Give the identity running Terraform the data-plane roles it needs to upload the package (Storage Blob Data Contributor on the package container) and write the secrets (Key Vault Secrets Officer on the vault). Turn off when a platform team grants them beforehand."
  type        = bool
  default     = true
}

variable "rbac_propagation_seconds" {
  description = "Seconds to wait after creating role assignments before the resources that depend on them (Azure RBAC is eventually consistent)."
  type        = number
  default     = 90

  validation {
    condition     = var.rbac_propagation_seconds >= 0 && var.rbac_propagation_seconds <= 900
    error_message = "rbac_propagation_seconds is between 0 and 900."
  }
}

# ------------------------------------------------------------------------------------------------
# Detection settings and alerts
# ------------------------------------------------------------------------------------------------

variable "webhook_urls" {
  description = "Alert webhooks: https://... (signed JSON), slack+https://..., teams+https://... They are credentials: the whole ADSCORE_SINKS value is stored in Key Vault and referenced from the app settings. Alerts are also written to the function logs (Application Insights)."
  type        = list(string)
  default     = []
  sensitive   = true

  validation {
    condition     = alltrue([for u in var.webhook_urls : can(regex("^(https|slack\\+https|teams\\+https)://", u))])
    error_message = "webhook_urls start with https://, slack+https:// or teams+https://."
  }
}

variable "create_webhook_secret" {
  description = "Create a Key Vault secret holding the webhook HMAC signing key (random initial value; rotate it out of band) and reference it as ADSCORE_WEBHOOK_SECRET."
  type        = bool
  default     = false
}

variable "secret_validity_days" {
  description = "Days until the Key Vault secrets' expiration date (a reminder to rotate them; Key Vault keeps serving an expired secret's value)."
  type        = number
  default     = 365

  validation {
    condition     = var.secret_validity_days >= 30 && var.secret_validity_days <= 1095
    error_message = "secret_validity_days is between 30 and 1095."
  }
}

variable "app_settings" {
  description = "More ADSCORE_* app settings, e.g. { ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD = \"8\", ADSCORE_ORG_ACCOUNTS = \"<subscription ids>\" }. The module's own settings cannot be overridden."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.app_settings) : can(regex("^ADSCORE_[A-Z0-9_]+$", k))])
    error_message = "app_settings keys are ADSCORE_* setting names (upper case)."
  }

  validation {
    condition     = length(setintersection(keys(var.app_settings), ["ADSCORE_STATE", "ADSCORE_SINKS", "ADSCORE_WEBHOOK_SECRET", "ADSCORE_DEADLETTER", "ADSCORE_EVENTHUB_NAME", "ADSCORE_EVENTHUB_CONSUMER_GROUP"])) == 0
    error_message = "app_settings cannot set ADSCORE_STATE, ADSCORE_SINKS, ADSCORE_WEBHOOK_SECRET, ADSCORE_DEADLETTER or ADSCORE_EVENTHUB_*: the module sets them."
  }
}

# ------------------------------------------------------------------------------------------------
# Delivery paths
# ------------------------------------------------------------------------------------------------

variable "existing_system_topic" {
  description = "A subscription has at most one Event Grid system topic for its own events. If one exists already, give its name and resource group (it needs a system-assigned identity, used for dead-lettering); otherwise the module creates it."
  type = object({
    name                = string
    resource_group_name = string
  })
  default = null
}

variable "event_grid_max_delivery_attempts" {
  description = "Deliveries Event Grid tries before it dead-letters an event to the dead-letter container."
  type        = number
  default     = 30

  validation {
    condition     = var.event_grid_max_delivery_attempts >= 1 && var.event_grid_max_delivery_attempts <= 30
    error_message = "event_grid_max_delivery_attempts is between 1 and 30."
  }
}

variable "activity_log_subscription_ids" {
  description = "Subscriptions whose Activity Log is streamed to the Event Hub by a diagnostic setting (writes, actions, denials: snapshot and discovery operations). Empty means the current subscription. The identity running Terraform needs Monitoring Contributor on each."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.activity_log_subscription_ids : can(regex("^[0-9a-fA-F-]{36}$", s))])
    error_message = "activity_log_subscription_ids are subscription GUIDs."
  }
}

variable "activity_log_categories" {
  description = "Activity Log categories streamed to the Event Hub."
  type        = list(string)
  default     = ["Administrative", "Security", "Policy"]

  validation {
    condition     = length(var.activity_log_categories) > 0 && alltrue([for c in var.activity_log_categories : contains(["Administrative", "Security", "ServiceHealth", "Alert", "Recommendation", "Policy", "Autoscale", "ResourceHealth"], c)])
    error_message = "activity_log_categories are Activity Log categories (Administrative, Security, Policy, ...) and include at least one."
  }
}

variable "aks_cluster_ids" {
  description = "AKS clusters whose Kubernetes audit log (aks_audit_category) is streamed to the Event Hub: exec, volume snapshots, namespace and permission sweeps."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.aks_cluster_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ContainerService/managedClusters/[^/]+$", id))])
    error_message = "aks_cluster_ids are AKS cluster resource ids."
  }
}

variable "key_vault_ids" {
  description = "Key Vaults whose AuditEvent log (data-plane calls: VaultGet, SecretList, KeyList, ...) is streamed to the Event Hub: vault sweeps count towards the discovery detections."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.key_vault_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.KeyVault/vaults/[^/]+$", id))])
    error_message = "key_vault_ids are Key Vault resource ids."
  }
}

variable "storage_account_ids" {
  description = "Storage accounts whose blob, queue, table and file StorageRead logs (ListContainers, ListBlobs, GetContainerProperties, ...) are streamed to the Event Hub."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.storage_account_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Storage/storageAccounts/[^/]+$", id))])
    error_message = "storage_account_ids are storage account resource ids."
  }
}

variable "aks_audit_category" {
  description = "AKS audit category: kube-audit (every request, including the get/list/watch reads discovery needs) or kube-audit-admin (no reads: cheaper, but blind to namespace sweeps)."
  type        = string
  default     = "kube-audit"

  validation {
    condition     = contains(["kube-audit", "kube-audit-admin"], var.aks_audit_category)
    error_message = "aks_audit_category is kube-audit or kube-audit-admin."
  }
}

variable "enable_entra_logs" {
  description = "Stream Entra ID logs (tenant-wide diagnostic setting; needs a Global or Security Administrator, and Entra ID P1/P2 for Graph activity logs) to the Event Hub: the reads of Microsoft Graph."
  type        = bool
  default     = false
}

variable "entra_log_categories" {
  description = "Entra ID diagnostic categories streamed when enable_entra_logs is true."
  type        = list(string)
  default     = ["MicrosoftGraphActivityLogs", "SignInLogs", "NonInteractiveUserSignInLogs", "ServicePrincipalSignInLogs", "AuditLogs"]

  validation {
    condition     = length(var.entra_log_categories) > 0
    error_message = "entra_log_categories needs at least one category."
  }
}

variable "eventhub_partition_count" {
  description = "Partitions of the Event Hub (the most Function App instances reading it in parallel)."
  type        = number
  default     = 4

  validation {
    condition     = var.eventhub_partition_count >= 1 && var.eventhub_partition_count <= 32
    error_message = "eventhub_partition_count is between 1 and 32."
  }
}

variable "eventhub_retention_days" {
  description = "Days the Event Hub keeps events the function has not read yet (Standard tier: 1-7)."
  type        = number
  default     = 7

  validation {
    condition     = var.eventhub_retention_days >= 1 && var.eventhub_retention_days <= 7
    error_message = "eventhub_retention_days is between 1 and 7."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

variable "enable_ingest_endpoint" {
  description = "Serve the HTTPS ingest endpoint (POST /api/ingest) for self-managed Kubernetes audit webhooks and adscore forward docker, with its bearer token and signing secret in Key Vault; when false the function is disabled."
  type        = bool
  default     = false
}

variable "ingest_max_bytes" {
  description = "Largest request body the ingest endpoint reads (ADSCORE_INGEST_MAX_BYTES)."
  type        = number
  default     = 4194304

  validation {
    condition     = var.ingest_max_bytes >= 1024 && var.ingest_max_bytes <= 104857600
    error_message = "ingest_max_bytes must be between 1024 and 104857600 (the Functions host's request limit)."
  }
}
