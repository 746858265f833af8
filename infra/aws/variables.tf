# ------------------------------------------------------------------------------------------------
# Naming and packaging
# ------------------------------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every resource name (functions, table, topics, queues, roles, rules)."
  type        = string
  default     = "adscore"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "lambda_zip_path" {
  description = "Path of the deployment zip built by `adscore package aws --out dist --arch <arch>` (dist/adscore-aws-lambda-<arch>.zip)."
  type        = string

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must name the .zip that `adscore package aws` wrote."
  }
}

variable "lambda_architecture" {
  description = "Lambda instruction set; must match the --arch the zip was built with."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture is x86_64 or arm64."
  }
}

variable "python_runtime" {
  description = "Lambda Python runtime; must match the --python the zip was built with (`adscore package aws --python 3.12` for python3.12)."
  type        = string
  default     = "python3.11"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.python_runtime)
    error_message = "python_runtime is python3.11, python3.12 or python3.13 (the runtimes `adscore package aws --python` builds for)."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of each function, in MB (CPU grows with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb is between 128 and 10240."
  }
}

variable "lambda_timeout_seconds" {
  description = "Timeout of each function, in seconds. The SQS queues' visibility timeout is six times this."
  type        = number
  default     = 300

  validation {
    condition     = var.lambda_timeout_seconds >= 30 && var.lambda_timeout_seconds <= 900
    error_message = "lambda_timeout_seconds is between 30 and 900."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of each function: a ceiling on cost and on the write rate to the state table, and a floor the account cannot take away. -1 reserves nothing (use it in accounts whose concurrency quota is low)."
  type        = number
  default     = 20

  validation {
    condition     = var.reserved_concurrency == -1 || var.reserved_concurrency >= 1
    error_message = "reserved_concurrency is -1 (unreserved) or at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, 400, ..., 3653)."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of the functions: Active (default; Powertools builds its tracer, about 170 ms of each cold start) or PassThrough (no tracer built: POWERTOOLS_TRACE_DISABLED=true)."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode is Active or PassThrough."
  }
}

variable "log_level" {
  description = "Log level of the functions (POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level is DEBUG, INFO, WARNING or ERROR."
  }
}

variable "subnet_ids" {
  description = "Subnets to run the functions in (optional). They need a route to the AWS APIs the functions call (DynamoDB, SNS, S3, SQS, Secrets Manager, SSM, KMS, X-Ray): NAT or VPC endpoints."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the functions when subnet_ids is set (egress to the AWS APIs only)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.security_group_ids) == 0 || length(var.subnet_ids) > 0
    error_message = "security_group_ids needs subnet_ids."
  }
}

variable "code_signing_config_arn" {
  description = "ARN of a Lambda code signing config to enforce on the functions (optional; sign the zip with AWS Signer first)."
  type        = string
  default     = null

  validation {
    condition     = var.code_signing_config_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]+$", var.code_signing_config_arn))
    error_message = "code_signing_config_arn must be a Lambda code signing config ARN."
  }
}

# ------------------------------------------------------------------------------------------------
# Detection settings and alerts
# ------------------------------------------------------------------------------------------------

variable "config_yaml" {
  description = "adscore settings YAML (thresholds, business hours, allowlists, suppressions; see examples/config.yaml). Stored as a KMS-encrypted SecureString SSM parameter and named by ADSCORE_CONFIG. Null keeps the shipped defaults."
  type        = string
  default     = null

  validation {
    condition     = var.config_yaml == null || length(coalesce(var.config_yaml, " ")) <= 8192
    error_message = "config_yaml is at most 8 KB (the SSM Advanced parameter limit)."
  }
}

variable "extra_environment" {
  description = "More ADSCORE_* variables for the functions, e.g. { ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD = \"8\" }. The module's own (ADSCORE_STATE, ADSCORE_SINKS, ADSCORE_CONFIG, ADSCORE_WEBHOOK_SECRET, ADSCORE_ORG_ACCOUNTS, ADSCORE_DEADLETTER) cannot be overridden."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^ADSCORE_[A-Z0-9_]+$", k))])
    error_message = "extra_environment keys are ADSCORE_* variable names (upper case)."
  }

  validation {
    condition     = length(setintersection(keys(var.extra_environment), ["ADSCORE_STATE", "ADSCORE_SINKS", "ADSCORE_CONFIG", "ADSCORE_WEBHOOK_SECRET", "ADSCORE_ORG_ACCOUNTS", "ADSCORE_DEADLETTER"])) == 0
    error_message = "extra_environment cannot set ADSCORE_STATE, ADSCORE_SINKS, ADSCORE_CONFIG, ADSCORE_WEBHOOK_SECRET, ADSCORE_ORG_ACCOUNTS or ADSCORE_DEADLETTER: the module sets them."
  }
}

variable "organization_account_ids" {
  description = "Account ids of your organisation: a snapshot shared with one of them is internal, with any other account external (ADSCORE_ORG_ACCOUNTS)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.organization_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "organization_account_ids are 12-digit AWS account ids."
  }
}

variable "securityhub_findings" {
  description = "Also import every alert into AWS Security Hub (enabled in this account and region) as an ASFF finding of the account's own product, and allow the functions securityhub:BatchImportFindings on it."
  type        = bool
  default     = false
}

variable "webhook_urls" {
  description = "Webhook sinks besides the SNS topic: https://... (signed JSON), slack+https://..., teams+https://..., pagerduty://ROUTING_KEY. These URLs are credentials: they are kept out of plans and stored in the functions' KMS-encrypted environment."
  type        = list(string)
  default     = []
  sensitive   = true

  validation {
    condition     = alltrue([for u in var.webhook_urls : can(regex("^(https|slack\\+https|teams\\+https|pagerduty)://", u))])
    error_message = "webhook_urls start with https://, slack+https://, teams+https:// or pagerduty://."
  }
}

variable "create_webhook_secret" {
  description = "Create a Secrets Manager secret (KMS) holding the webhook HMAC signing key, with a random initial value; rotate it out of band (Terraform ignores later values)."
  type        = bool
  default     = false
}

variable "webhook_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding the webhook HMAC signing key (instead of create_webhook_secret)."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.webhook_secret_arn))
    error_message = "webhook_secret_arn must be a Secrets Manager secret ARN."
  }

  validation {
    condition     = !(var.create_webhook_secret && var.webhook_secret_arn != null)
    error_message = "Set create_webhook_secret or webhook_secret_arn, not both."
  }
}

variable "webhook_secret_kms_key_arn" {
  description = "KMS key of the existing webhook secret (webhook_secret_arn), when it is not encrypted with the AWS managed key: the functions get kms:Decrypt on it."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.webhook_secret_kms_key_arn))
    error_message = "webhook_secret_kms_key_arn must be a KMS key ARN."
  }
}

variable "alert_email_addresses" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "alert_email_addresses must be e-mail addresses."
  }
}

# ------------------------------------------------------------------------------------------------
# Delivery paths
# ------------------------------------------------------------------------------------------------

variable "enable_snapshot_rule" {
  description = "Create the EventBridge rule that sends the snapshot API calls (the pattern generated from actions.py) to the eventbridge function."
  type        = bool
  default     = true
}

variable "enable_discovery_rule" {
  description = "Create the EventBridge rule that receives every read-only management event (state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS), the permission probes and failed calls, batched through SQS to the sqs function. Read-only events are numerous: turn this off when the CloudTrail S3 path carries them instead."
  type        = bool
  default     = true
}

variable "organization_id" {
  description = "AWS Organizations id (o-...). When set, the module creates an event bus that every account of the organisation may put events on, with the same rules; member accounts forward their CloudTrail events to it (see README)."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id looks like o-abcdefghij."
  }
}

variable "cloudtrail_bucket_name" {
  description = "Name of the S3 bucket a trail (or an organisation trail) delivers to. When set, new log files are announced to an SQS queue the sqs function reads (every event, including all read-only calls)."
  type        = string
  default     = null

  validation {
    condition     = var.cloudtrail_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.cloudtrail_bucket_name))
    error_message = "cloudtrail_bucket_name must be an S3 bucket name."
  }
}

variable "cloudtrail_bucket_account_id" {
  description = "Account that owns the CloudTrail bucket, when it is not this account (an organisation's log archive account). That account must then configure the bucket notification and allow s3:GetObject to the sqs function's role (see README)."
  type        = string
  default     = null

  validation {
    condition     = var.cloudtrail_bucket_account_id == null || can(regex("^[0-9]{12}$", var.cloudtrail_bucket_account_id))
    error_message = "cloudtrail_bucket_account_id is a 12-digit account id."
  }
}

variable "cloudtrail_key_prefix" {
  description = "Key prefix of the trail's log files in the bucket (the trail's S3 key prefix, if any, followed by AWSLogs/). Empty for the whole bucket."
  type        = string
  default     = "AWSLogs/"
}

variable "cloudtrail_kms_key_arn" {
  description = "KMS key the trail encrypts its log files with (SSE-KMS), if any: the sqs function gets kms:Decrypt on it."
  type        = string
  default     = null

  validation {
    condition     = var.cloudtrail_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.cloudtrail_kms_key_arn))
    error_message = "cloudtrail_kms_key_arn must be a KMS key ARN."
  }
}

variable "manage_cloudtrail_bucket_notification" {
  description = "Let this module own the bucket's S3 event notification configuration. Terraform's aws_s3_bucket_notification REPLACES every notification of the bucket: set false when the bucket has other notifications, and add the queue (output cloudtrail_queue_arn) to them yourself."
  type        = bool
  default     = true
}

variable "cloudtrail_log_group_name" {
  description = "CloudWatch Logs log group a trail delivers to (optional): subscribed to the cwlogs function."
  type        = string
  default     = null
}

variable "eks_audit_log_group_names" {
  description = "EKS control plane log groups (/aws/eks/<cluster>/cluster, with the audit log type enabled) whose audit events go to the cwlogs function."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.eks_audit_log_group_names : can(regex("^/aws/eks/[^/]+/cluster$", g))])
    error_message = "eks_audit_log_group_names are /aws/eks/<cluster>/cluster log groups."
  }
}

variable "sqs_batch_size" {
  description = "Most EventBridge events the sqs function takes from the events queue in one invocation."
  type        = number
  default     = 100

  validation {
    condition     = var.sqs_batch_size >= 1 && var.sqs_batch_size <= 10000
    error_message = "sqs_batch_size is between 1 and 10000."
  }
}

variable "cloudtrail_batch_size" {
  description = "Most CloudTrail log files (S3 notifications) the sqs function takes in one invocation; a file can hold tens of MB."
  type        = number
  default     = 5

  validation {
    condition     = var.cloudtrail_batch_size >= 1 && var.cloudtrail_batch_size <= 10
    error_message = "cloudtrail_batch_size is between 1 and 10."
  }
}

variable "sqs_maximum_concurrency" {
  description = "Most concurrent invocations each SQS event source mapping starts."
  type        = number
  default     = 10

  validation {
    condition     = var.sqs_maximum_concurrency >= 2 && var.sqs_maximum_concurrency <= 1000
    error_message = "sqs_maximum_concurrency is between 2 and 1000."
  }
}

variable "max_receive_count" {
  description = "Deliveries of an SQS message before it moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count is between 1 and 1000."
  }
}

# ------------------------------------------------------------------------------------------------
# Operations
# ------------------------------------------------------------------------------------------------

variable "alarm_actions" {
  description = "More ARNs (SNS topics of your on-call tooling) notified by the alarms, besides the module's alarms topic."
  type        = list(string)
  default     = []
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarms topic (function errors, throttles, dead-letter messages)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alarm_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "alarm_email_addresses must be e-mail addresses."
  }
}

variable "deletion_protection" {
  description = "Protect the state table from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

variable "enable_ingest_endpoint" {
  description = "Create the HTTPS ingest endpoint (a Lambda Function URL) for self-managed Kubernetes audit webhooks and adscore forward docker, with its bearer token and signing secret in Secrets Manager."
  type        = bool
  default     = false
}

variable "ingest_max_bytes" {
  description = "Largest request body the ingest endpoint reads (ADSCORE_INGEST_MAX_BYTES); Function URLs stop at 6 MB."
  type        = number
  default     = 4194304

  validation {
    condition     = var.ingest_max_bytes >= 1024 && var.ingest_max_bytes <= 6000000
    error_message = "ingest_max_bytes must be between 1024 and 6000000 (the Function URL payload limit)."
  }
}
