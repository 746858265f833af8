# adscore in one AWS account (and, with organization_id, as the receiver of an organisation's events).
# Build the zip first, from the repository root:  adscore package aws --out dist --arch x86_64

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

locals {
  # Where `adscore package aws --out dist` writes the zip, relative to this folder.
  lambda_zip_path = coalesce(var.lambda_zip_path, "${path.root}/../../../dist/adscore-aws-lambda-${var.lambda_architecture}.zip")
}

module "adscore" {
  source = "../../aws"

  name_prefix         = var.name_prefix
  lambda_zip_path     = local.lambda_zip_path
  lambda_architecture = var.lambda_architecture

  config_yaml              = var.config_file == null ? null : file(var.config_file)
  organization_account_ids = var.organization_account_ids
  webhook_urls             = var.webhook_urls
  create_webhook_secret    = var.create_webhook_secret
  alert_email_addresses    = var.alert_email_addresses
  alarm_email_addresses    = var.alarm_email_addresses

  enable_snapshot_rule      = true
  enable_discovery_rule     = var.enable_discovery_rule
  organization_id           = var.organization_id
  cloudtrail_bucket_name    = var.cloudtrail_bucket_name
  cloudtrail_key_prefix     = var.cloudtrail_key_prefix
  cloudtrail_kms_key_arn    = var.cloudtrail_kms_key_arn
  eks_audit_log_group_names = var.eks_audit_log_group_names

  deletion_protection = var.deletion_protection
  tags                = var.tags
}
