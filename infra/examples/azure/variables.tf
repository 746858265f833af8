variable "subscription_id" {
  description = "Subscription to deploy to; its Event Grid system topic feeds the function."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F-]{36}$", var.subscription_id))
    error_message = "subscription_id is a subscription GUID."
  }
}

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
  default     = "westeurope"
}

variable "resource_group_name" {
  description = "Resource group created for adscore."
  type        = string
  default     = "adscore"
}

variable "name_prefix" {
  description = "Prefix of every resource name (3-12 lowercase letters and digits)."
  type        = string
  default     = "adscore"
}

variable "package_path" {
  description = "Path of the zip from `adscore package azure`; null means dist/adscore-azure-functions.zip at the repository root."
  type        = string
  default     = null
}

variable "management_group_name" {
  description = "Management group whose subscriptions all stream their Activity Log to adscore (you need Monitoring Contributor on each); null for this subscription only."
  type        = string
  default     = null
}

variable "aks_cluster_ids" {
  description = "AKS clusters whose kube-audit log is streamed to adscore."
  type        = list(string)
  default     = []
}

variable "enable_entra_logs" {
  description = "Stream Entra ID sign-in, audit and Microsoft Graph activity logs (tenant-wide; needs Global or Security Administrator)."
  type        = bool
  default     = false
}

variable "webhook_urls" {
  description = "Alert webhooks (https://, slack+https://, teams+https://)."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "create_webhook_secret" {
  description = "Create the webhook signing key in Key Vault."
  type        = bool
  default     = false
}

variable "app_settings" {
  description = "More ADSCORE_* settings, e.g. detection thresholds."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default = {
    application = "adscore"
  }
}
