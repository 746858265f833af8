variable "region" {
  description = "AWS region to deploy to. Global services (IAM, STS) log their events in us-east-1: deploy there too, or use the CloudTrail S3 path, to see them."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region looks like eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "adscore"
}

variable "lambda_architecture" {
  description = "Lambda architecture; build the zip with the same --arch."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture is x86_64 or arm64."
  }
}

variable "lambda_zip_path" {
  description = "Path of the zip from `adscore package aws`; null means dist/adscore-aws-lambda-<arch>.zip at the repository root."
  type        = string
  default     = null
}

variable "config_file" {
  description = "Path of an adscore settings YAML (see examples/config.yaml in the repository), stored in SSM; null keeps the defaults."
  type        = string
  default     = null
}

variable "organization_account_ids" {
  description = "Account ids of your organisation (snapshots shared with them are internal)."
  type        = list(string)
  default     = []
}

variable "webhook_urls" {
  description = "Alert webhooks (https://, slack+https://, teams+https://) besides the SNS topic."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "create_webhook_secret" {
  description = "Create the webhook signing key in Secrets Manager."
  type        = bool
  default     = false
}

variable "alert_email_addresses" {
  description = "E-mail addresses that receive the alerts."
  type        = list(string)
  default     = []
}

variable "alarm_email_addresses" {
  description = "E-mail addresses that receive the operational alarms."
  type        = list(string)
  default     = []
}

variable "enable_discovery_rule" {
  description = "Receive every read-only management event through EventBridge (discovery detections)."
  type        = bool
  default     = true
}

variable "organization_id" {
  description = "AWS Organizations id (o-...) to create the organisation event bus; null for a single account."
  type        = string
  default     = null
}

variable "cloudtrail_bucket_name" {
  description = "Bucket of an existing (organisation) trail in this account, for the S3 -> SQS path; null to skip it."
  type        = string
  default     = null
}

variable "cloudtrail_key_prefix" {
  description = "Key prefix of the trail's files in the bucket (the trail's own prefix, then AWSLogs/)."
  type        = string
  default     = "AWSLogs/"
}

variable "cloudtrail_kms_key_arn" {
  description = "KMS key of the trail's files, if SSE-KMS."
  type        = string
  default     = null
}

variable "eks_audit_log_group_names" {
  description = "EKS control plane log groups (/aws/eks/<cluster>/cluster) with audit logs enabled."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the state table from deletion (set false, apply, then destroy)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default = {
    application = "adscore"
  }
}
