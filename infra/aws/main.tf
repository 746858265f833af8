# adscore on AWS: three Lambda functions from the `adscore package aws` zip, the EventBridge rules,
# SQS and S3 paths that feed them, the DynamoDB state table, the SNS alerts topic, and the alarms.
# Every resource that holds data is encrypted with the module's customer managed KMS key, and every
# role can reach exactly the resources of this module.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  # EventBridge patterns generated from src/adscore/actions.py by scripts/gen_infra_filters.py.
  patterns = jsondecode(file("${path.module}/generated/eventbridge_patterns.json"))

  use_cloudtrail_s3  = var.cloudtrail_bucket_name != null
  use_events_queue   = var.enable_discovery_rule
  use_sqs_function   = local.use_events_queue || local.use_cloudtrail_s3
  cwlogs_log_groups  = toset(concat(var.eks_audit_log_group_names, var.cloudtrail_log_group_name == null ? [] : [var.cloudtrail_log_group_name]))
  use_cwlogs         = length(local.cwlogs_log_groups) > 0
  bucket_account_id  = coalesce(var.cloudtrail_bucket_account_id, local.account_id)
  cloudtrail_objects = local.use_cloudtrail_s3 ? "arn:${local.partition}:s3:::${var.cloudtrail_bucket_name}/${var.cloudtrail_key_prefix}*" : null

  # One Lambda function per delivery shape; only those with a delivery path are created.
  all_functions = {
    eventbridge = {
      handler     = "handler.eventbridge_handler"
      description = "adscore: EventBridge CloudTrail events (snapshot API calls)"
      enabled     = var.enable_snapshot_rule
    }
    sqs = {
      handler     = "handler.sqs_handler"
      description = "adscore: SQS batches of EventBridge events and CloudTrail S3 log files"
      enabled     = local.use_sqs_function
    }
    cwlogs = {
      handler     = "handler.cloudwatch_logs_handler"
      description = "adscore: CloudWatch Logs subscriptions (CloudTrail, EKS audit)"
      enabled     = local.use_cwlogs
    }
    ingest = {
      handler     = "handler.ingest_handler"
      description = "adscore: HTTPS ingest endpoint (Kubernetes audit webhook, adscore forward docker)"
      enabled     = var.enable_ingest_endpoint
    }
  }
  functions = { for k, f in local.all_functions : k => f if f.enabled }
  # Functions invoked asynchronously (EventBridge, CloudWatch Logs): their failed events go to a DLQ.
  async_functions = toset([for k in ["eventbridge", "cwlogs"] : k if contains(keys(local.functions), k)])

  # Event buses the rules are attached to: this account's default bus, and the organisation bus.
  event_buses = merge(
    { default = "default" },
    var.organization_id == null ? {} : { organization = aws_cloudwatch_event_bus.organization[0].name },
  )
  snapshot_buses  = var.enable_snapshot_rule ? local.event_buses : {}
  discovery_buses = var.enable_discovery_rule ? local.event_buses : {}

  webhook_secret_arn = var.create_webhook_secret ? aws_secretsmanager_secret.webhook[0].arn : var.webhook_secret_arn
  config_parameter   = var.config_yaml == null ? null : "/${var.name_prefix}/config"

  environment = merge(
    var.extra_environment,
    {
      ADSCORE_STATE           = "dynamodb://${aws_dynamodb_table.state.name}"
      ADSCORE_SINKS           = join(",", concat(["sns://${aws_sns_topic.alerts.arn}"], var.securityhub_findings ? ["securityhub://${local.region}/${local.account_id}"] : [], var.webhook_urls))
      ADSCORE_DEADLETTER      = "sqs://${aws_sqs_queue.unreadable.name}"
      POWERTOOLS_SERVICE_NAME = "adscore"
      POWERTOOLS_LOG_LEVEL    = var.log_level
    },
    local.webhook_secret_arn == null ? {} : { ADSCORE_WEBHOOK_SECRET = local.webhook_secret_arn },
    local.config_parameter == null ? {} : { ADSCORE_CONFIG = "ssm://${local.config_parameter}" },
    length(var.organization_account_ids) == 0 ? {} : { ADSCORE_ORG_ACCOUNTS = join(",", var.organization_account_ids) },
    var.tracing_mode == "Active" ? {} : { POWERTOOLS_TRACE_DISABLED = "true" },
  )

  # The ingest function alone reads the ingest secrets (their ARNs; the function fetches the values).
  ingest_secrets = var.enable_ingest_endpoint ? {
    ADSCORE_INGEST_TOKEN          = aws_secretsmanager_secret.ingest["token"].arn
    ADSCORE_INGEST_SIGNING_SECRET = aws_secretsmanager_secret.ingest["signing"].arn
  } : {}
  ingest_environment = merge(local.ingest_secrets, { ADSCORE_INGEST_MAX_BYTES = tostring(var.ingest_max_bytes) })

  alarm_actions = concat([aws_sns_topic.alarms.arn], var.alarm_actions)

  dead_letter_queues = merge(
    { failed_invocations = aws_sqs_queue.failed_invocations.name, unreadable = aws_sqs_queue.unreadable.name },
    local.use_sqs_function ? { redrive = aws_sqs_queue.redrive_dlq[0].name } : {},
  )
}

# ------------------------------------------------------------------------------------------------
# KMS: one customer managed key for the table, topics, queues, logs, secret, parameter and env
# ------------------------------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  description             = "adscore (${var.name_prefix}): state table, alert topics, queues, logs, secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsTheFunctionLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*"
          }
        }
      },
      {
        # EventBridge (rule targets and their DLQ), S3 (bucket notifications) and CloudWatch
        # (alarm notifications) write to this module's encrypted queues and topics.
        Sid    = "ServicesWriteToTheEncryptedQueuesAndTopics"
        Effect = "Allow"
        Principal = {
          Service = ["events.amazonaws.com", "s3.amazonaws.com", "cloudwatch.amazonaws.com"]
        }
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = distinct([local.account_id, local.bucket_account_id]) }
        }
      },
    ]
  })
  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}

# ------------------------------------------------------------------------------------------------
# State: DynamoDB table (src/adscore/state/dynamodb.py TABLE_SCHEMA)
# ------------------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "state" {
  name                        = "${var.name_prefix}-state"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # purge_at = expires_at + 30 days: DynamoDB deletes an item only long after readers ignore it.
  ttl {
    attribute_name = "purge_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = var.tags
}

# ------------------------------------------------------------------------------------------------
# Alerts and alarms: SNS topics
# ------------------------------------------------------------------------------------------------

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each  = toset(var.alert_email_addresses)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudWatchAlarmsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.alarms.arn
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each  = toset(var.alarm_email_addresses)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# ------------------------------------------------------------------------------------------------
# Secrets and settings
# ------------------------------------------------------------------------------------------------

resource "random_password" "webhook" {
  count   = var.create_webhook_secret ? 1 : 0
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "webhook" {
  #checkov:skip=CKV2_AWS_57:The HMAC key is shared with the webhook receiver, so a rotation Lambda cannot change it alone; rotate it with the receiver (README).
  count                   = var.create_webhook_secret ? 1 : 0
  name_prefix             = "${var.name_prefix}-webhook-"
  description             = "adscore webhook HMAC-SHA256 signing key (ADSCORE_WEBHOOK_SECRET)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "webhook" {
  count         = var.create_webhook_secret ? 1 : 0
  secret_id     = aws_secretsmanager_secret.webhook[0].id
  secret_string = random_password.webhook[0].result

  lifecycle {
    # Rotated out of band with the receiver; Terraform only sets the first value.
    ignore_changes = [secret_string]
  }
}

# The ingest endpoint's credentials: the API servers' bearer token and the forwarders' Standard
# Webhooks signing secret (whsec_ + base64 of 32 random bytes). Read them from Secrets Manager into
# the kubeconfig and the forwarder's settings; rotate by writing a new value (Terraform ignores it).
resource "random_password" "ingest_token" {
  count   = var.enable_ingest_endpoint ? 1 : 0
  length  = 48
  special = false
}

resource "random_id" "ingest_signing" {
  count       = var.enable_ingest_endpoint ? 1 : 0
  byte_length = 32
}

resource "aws_secretsmanager_secret" "ingest" {
  #checkov:skip=CKV2_AWS_57:The token and signing key are shared with the API servers and forwarders, so a rotation Lambda cannot change them alone; rotate them with their senders (README).
  for_each                = var.enable_ingest_endpoint ? toset(["token", "signing"]) : toset([])
  name_prefix             = "${var.name_prefix}-ingest-${each.key}-"
  description             = each.key == "token" ? "adscore ingest endpoint bearer token (ADSCORE_INGEST_TOKEN)" : "adscore ingest endpoint Standard Webhooks secret (ADSCORE_INGEST_SIGNING_SECRET)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "ingest" {
  for_each      = aws_secretsmanager_secret.ingest
  secret_id     = each.value.id
  secret_string = each.key == "token" ? random_password.ingest_token[0].result : "whsec_${random_id.ingest_signing[0].b64_std}"

  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_ssm_parameter" "config" {
  count       = var.config_yaml == null ? 0 : 1
  name        = local.config_parameter
  description = "adscore settings YAML (ADSCORE_CONFIG)"
  type        = "SecureString"
  tier        = "Intelligent-Tiering"
  key_id      = aws_kms_key.this.arn
  value       = var.config_yaml
  tags        = var.tags
}

# ------------------------------------------------------------------------------------------------
# Queues: EventBridge events (discovery), CloudTrail file notifications, dead letters
# ------------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "redrive_dlq" {
  count                             = local.use_sqs_function ? 1 : 0
  name                              = "${var.name_prefix}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "redrive_dlq" {
  count     = local.use_sqs_function ? 1 : 0
  queue_url = aws_sqs_queue.redrive_dlq[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = concat(aws_sqs_queue.events[*].arn, aws_sqs_queue.cloudtrail[*].arn)
  })
}

resource "aws_sqs_queue" "events" {
  count                             = local.use_events_queue ? 1 : 0
  name                              = "${var.name_prefix}-events"
  visibility_timeout_seconds        = 6 * var.lambda_timeout_seconds
  message_retention_seconds         = 345600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.redrive_dlq[0].arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_policy" "events" {
  count     = local.use_events_queue ? 1 : 0
  queue_url = aws_sqs_queue.events[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DiscoveryRulesSendEvents"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.events[0].arn
        Condition = {
          ArnEquals = { "aws:SourceArn" = [for r in aws_cloudwatch_event_rule.discovery : r.arn] }
        }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "sqs:*"
        Resource  = aws_sqs_queue.events[0].arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_sqs_queue" "cloudtrail" {
  count                             = local.use_cloudtrail_s3 ? 1 : 0
  name                              = "${var.name_prefix}-cloudtrail-files"
  visibility_timeout_seconds        = 6 * var.lambda_timeout_seconds
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.redrive_dlq[0].arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_policy" "cloudtrail" {
  count     = local.use_cloudtrail_s3 ? 1 : 0
  queue_url = aws_sqs_queue.cloudtrail[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "TrailBucketAnnouncesNewFiles"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.cloudtrail[0].arn
        Condition = {
          ArnEquals    = { "aws:SourceArn" = "arn:${local.partition}:s3:::${var.cloudtrail_bucket_name}" }
          StringEquals = { "aws:SourceAccount" = local.bucket_account_id }
        }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "sqs:*"
        Resource  = aws_sqs_queue.cloudtrail[0].arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

# Failed asynchronous invocations (Lambda DLQ) and events EventBridge could not deliver (target DLQ).
resource "aws_sqs_queue" "failed_invocations" {
  name                              = "${var.name_prefix}-failed-invocations"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = var.tags
}

resource "aws_sqs_queue_policy" "failed_invocations" {
  queue_url = aws_sqs_queue.failed_invocations.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(local.snapshot_buses) + length(local.discovery_buses) == 0 ? [] : [
        {
          Sid       = "RulesDeadLetterUndeliveredEvents"
          Effect    = "Allow"
          Principal = { Service = "events.amazonaws.com" }
          Action    = "sqs:SendMessage"
          Resource  = aws_sqs_queue.failed_invocations.arn
          Condition = {
            ArnEquals = {
              "aws:SourceArn" = concat(
                [for r in aws_cloudwatch_event_rule.snapshot : r.arn],
                [for r in aws_cloudwatch_event_rule.discovery : r.arn],
              )
            }
          }
        },
      ],
      [
        {
          Sid       = "DenyInsecureTransport"
          Effect    = "Deny"
          Principal = { AWS = "*" }
          Action    = "sqs:*"
          Resource  = aws_sqs_queue.failed_invocations.arn
          Condition = { Bool = { "aws:SecureTransport" = "false" } }
        },
      ],
    )
  })
}

# Records no parser can read, with their bytes and reason (ADSCORE_DEADLETTER), from every function:
# the EventBridge, SQS and CloudWatch Logs paths alike. Retrying them cannot help; redrive once fixed.
resource "aws_sqs_queue" "unreadable" {
  name                              = "${var.name_prefix}-unreadable"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = var.tags
}

resource "aws_sqs_queue_policy" "unreadable" {
  queue_url = aws_sqs_queue.unreadable.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "sqs:*"
        Resource  = aws_sqs_queue.unreadable.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

# ------------------------------------------------------------------------------------------------
# IAM: one role per function, scoped to this module's resources
# ------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.name_prefix}-${each.key}"
  description        = "adscore ${each.key} function"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "ReadWriteState"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.state.arn]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  dynamic "statement" {
    for_each = var.securityhub_findings ? ["arn:${local.partition}:securityhub:${local.region}:${local.account_id}:product/${local.account_id}/default"] : []
    content {
      sid       = "ImportSecurityHubFindings"
      actions   = ["securityhub:BatchImportFindings"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "DeadLetterUnreadableRecords"
    actions   = ["sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = [aws_sqs_queue.unreadable.arn]
  }

  statement {
    sid       = "UseModuleKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  dynamic "statement" {
    for_each = contains(local.async_functions, each.key) ? [aws_sqs_queue.failed_invocations.arn] : []
    content {
      sid       = "DeadLetterFailedInvocations"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.webhook_secret_arn == null ? [] : [local.webhook_secret_arn]
    content {
      sid       = "ReadWebhookSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = each.key == "ingest" ? [values(local.ingest_secrets)] : []
    content {
      sid       = "ReadIngestSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = var.webhook_secret_kms_key_arn == null ? [] : [var.webhook_secret_kms_key_arn]
    content {
      sid       = "DecryptWebhookSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = aws_ssm_parameter.config[*].arn
    content {
      sid       = "ReadSettings"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = each.key == "sqs" ? [concat(aws_sqs_queue.events[*].arn, aws_sqs_queue.cloudtrail[*].arn)] : []
    content {
      sid       = "ConsumeQueues"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = each.key == "sqs" && local.use_cloudtrail_s3 ? [local.cloudtrail_objects] : []
    content {
      sid       = "ReadTrailFiles"
      actions   = ["s3:GetObject"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = each.key == "sqs" && var.cloudtrail_kms_key_arn != null ? [var.cloudtrail_kms_key_arn] : []
    content {
      sid       = "DecryptTrailFiles"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "adscore-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

# X-Ray segments (Powertools Tracer); the actions take no resource ARN.
resource "aws_iam_role_policy_attachment" "xray" {
  for_each   = local.functions
  role       = aws_iam_role.function[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_iam_role_policy_attachment" "vpc" {
  for_each   = length(var.subnet_ids) > 0 ? local.functions : {}
  role       = aws_iam_role.function[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# ------------------------------------------------------------------------------------------------
# Functions
# ------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:Running in a VPC is optional (subnet_ids): the functions call only AWS APIs, and a VPC needs NAT or endpoints for each of them.
  #checkov:skip=CKV_AWS_272:Code signing is optional (code_signing_config_arn): it needs an AWS Signer profile the zip is signed with.
  for_each                       = local.functions
  function_name                  = "${var.name_prefix}-${each.key}"
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = var.python_runtime
  architectures                  = [var.lambda_architecture]
  handler                        = each.value.handler
  filename                       = var.lambda_zip_path
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  code_signing_config_arn        = var.code_signing_config_arn

  environment {
    variables = each.key == "ingest" ? merge(local.environment, local.ingest_environment) : local.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  # Asynchronous invocations that still fail after Lambda's retries land here.
  dead_letter_config {
    target_arn = aws_sqs_queue.failed_invocations.arn
  }

  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
    aws_iam_role_policy_attachment.xray,
    aws_iam_role_policy_attachment.vpc,
  ]
}

resource "aws_lambda_function_event_invoke_config" "async" {
  for_each                     = local.async_functions
  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600
}

# The ingest endpoint: a Function URL (HTTPS, no API Gateway). AuthType NONE because an API server's
# audit webhook and the Docker forwarder cannot sign AWS SigV4 requests: the function authenticates
# every request itself (bearer token or Standard Webhooks signature) before anything is read.
resource "aws_lambda_function_url" "ingest" {
  #checkov:skip=CKV_AWS_258:The callers (kube-apiserver audit webhook, adscore forward docker) cannot sign SigV4; the function refuses any request without the bearer token or a valid Standard Webhooks signature (401).
  count              = var.enable_ingest_endpoint ? 1 : 0
  function_name      = aws_lambda_function.this["ingest"].function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

# Since October 2025 a public Function URL needs both permissions; the second only via the URL.
resource "aws_lambda_permission" "ingest_url" {
  count                  = var.enable_ingest_endpoint ? 1 : 0
  statement_id           = "AllowPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this["ingest"].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "ingest_invoke" {
  count                    = var.enable_ingest_endpoint ? 1 : 0
  statement_id             = "AllowInvokeViaFunctionUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this["ingest"].function_name
  principal                = "*"
  invoked_via_function_url = true
}

# ------------------------------------------------------------------------------------------------
# EventBridge: snapshot rule -> eventbridge function; discovery rule -> events queue -> sqs function
# ------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_bus" "organization" {
  count = var.organization_id == null ? 0 : 1
  name  = "${var.name_prefix}-organization"
  tags  = var.tags
}

resource "aws_cloudwatch_event_bus_policy" "organization" {
  count          = var.organization_id == null ? 0 : 1
  event_bus_name = aws_cloudwatch_event_bus.organization[0].name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountsOfTheOrganisationPutEvents"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action    = "events:PutEvents"
        Resource  = aws_cloudwatch_event_bus.organization[0].arn
        Condition = {
          StringEquals = { "aws:PrincipalOrgID" = var.organization_id }
        }
      },
    ]
  })
}

resource "aws_cloudwatch_event_rule" "snapshot" {
  for_each       = local.snapshot_buses
  name           = "${var.name_prefix}-snapshot"
  description    = "adscore: snapshot, image and backup API calls (generated from src/adscore/actions.py)"
  event_bus_name = each.value
  event_pattern  = jsonencode(local.patterns.snapshot)
  # The pattern names its calls one by one; a few of them (EBS direct APIs) are read-only.
  state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  tags  = var.tags
}

resource "aws_cloudwatch_event_target" "snapshot" {
  for_each       = local.snapshot_buses
  rule           = aws_cloudwatch_event_rule.snapshot[each.key].name
  event_bus_name = each.value
  target_id      = "adscore-eventbridge"
  arn            = aws_lambda_function.this["eventbridge"].arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.failed_invocations.arn
  }
}

resource "aws_lambda_permission" "snapshot_rule" {
  for_each       = local.snapshot_buses
  statement_id   = "AllowEventBridge-${each.key}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["eventbridge"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.snapshot[each.key].arn
  source_account = local.account_id
}

resource "aws_cloudwatch_event_rule" "discovery" {
  for_each       = local.discovery_buses
  name           = "${var.name_prefix}-discovery"
  description    = "adscore: read-only calls, permission probes and failed calls (discovery)"
  event_bus_name = each.value
  event_pattern  = jsonencode(local.patterns.discovery)
  # Without this state EventBridge never delivers read-only management events (Describe*, Get*, List*).
  state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  tags  = var.tags
}

resource "aws_cloudwatch_event_target" "discovery" {
  for_each       = local.discovery_buses
  rule           = aws_cloudwatch_event_rule.discovery[each.key].name
  event_bus_name = each.value
  target_id      = "adscore-events-queue"
  arn            = aws_sqs_queue.events[0].arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.failed_invocations.arn
  }
}

resource "aws_lambda_event_source_mapping" "events" {
  count                              = local.use_events_queue ? 1 : 0
  event_source_arn                   = aws_sqs_queue.events[0].arn
  function_name                      = aws_lambda_function.this["sqs"].arn
  batch_size                         = var.sqs_batch_size
  maximum_batching_window_in_seconds = 10
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.sqs_maximum_concurrency
  }
}

# ------------------------------------------------------------------------------------------------
# CloudTrail S3 files -> SQS -> sqs function
# ------------------------------------------------------------------------------------------------

resource "aws_s3_bucket_notification" "cloudtrail" {
  count  = local.use_cloudtrail_s3 && var.manage_cloudtrail_bucket_notification && local.bucket_account_id == local.account_id ? 1 : 0
  bucket = var.cloudtrail_bucket_name

  queue {
    id            = "adscore-cloudtrail-files"
    queue_arn     = aws_sqs_queue.cloudtrail[0].arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.cloudtrail_key_prefix == "" ? null : var.cloudtrail_key_prefix
    filter_suffix = ".json.gz"
  }

  depends_on = [aws_sqs_queue_policy.cloudtrail]
}

resource "aws_lambda_event_source_mapping" "cloudtrail" {
  count                              = local.use_cloudtrail_s3 ? 1 : 0
  event_source_arn                   = aws_sqs_queue.cloudtrail[0].arn
  function_name                      = aws_lambda_function.this["sqs"].arn
  batch_size                         = var.cloudtrail_batch_size
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.sqs_maximum_concurrency
  }
}

# ------------------------------------------------------------------------------------------------
# CloudWatch Logs subscriptions (CloudTrail log group, EKS audit) -> cwlogs function
# ------------------------------------------------------------------------------------------------

resource "aws_lambda_permission" "cwlogs" {
  for_each       = local.cwlogs_log_groups
  statement_id   = "AllowLogs-${substr(sha1(each.value), 0, 16)}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["cwlogs"].function_name
  principal      = "logs.amazonaws.com"
  source_arn     = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${each.value}:*"
  source_account = local.account_id
}

resource "aws_cloudwatch_log_subscription_filter" "cwlogs" {
  for_each        = local.cwlogs_log_groups
  name            = "${var.name_prefix}-audit"
  log_group_name  = each.value
  destination_arn = aws_lambda_function.this["cwlogs"].arn
  # EKS control plane groups also hold api, authenticator and scheduler logs: keep audit events only.
  filter_pattern = startswith(each.value, "/aws/eks/") ? "{ $.kind = \"Event\" }" : ""

  depends_on = [aws_lambda_permission.cwlogs]
}

# ------------------------------------------------------------------------------------------------
# Alarms: function errors and throttles, dead-letter depth
# ------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = local.functions
  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "adscore ${each.key}: invocations failed (state or alert delivery failed, or the function crashed); the events are retried or dead-lettered."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each            = local.functions
  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "adscore ${each.key}: invocations throttled (reserved concurrency reached); raise reserved_concurrency."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each            = local.dead_letter_queues
  alarm_name          = "${var.name_prefix}-${replace(each.key, "_", "-")}-dead-letters"
  alarm_description   = "adscore: messages in dead-letter queue ${each.value}; inspect them and redrive once the cause is fixed."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
