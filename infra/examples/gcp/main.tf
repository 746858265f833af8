# adscore in one Google Cloud project, reading the audit logs of that project, of a folder or of the
# whole organisation through one log sink.
# Build the zip first, from the repository root:  adscore package gcp --out dist

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  # Where `adscore package gcp --out dist` writes the zip, relative to this folder.
  source_zip_path = coalesce(var.source_zip_path, "${path.root}/../../../dist/adscore-gcp-function.zip")
}

module "adscore" {
  source = "../../gcp"

  project_id      = var.project_id
  region          = var.region
  name_prefix     = var.name_prefix
  source_zip_path = local.source_zip_path

  sink_level              = var.sink_level
  sink_parent_id          = var.sink_parent_id
  enable_data_access_logs = var.enable_data_access_logs

  firestore_location    = var.firestore_location
  webhook_urls          = var.webhook_urls
  create_webhook_secret = var.create_webhook_secret
  environment           = var.environment
  build_service_account = var.build_service_account

  deletion_protection = var.deletion_protection
  labels              = var.labels
}
