# adscore in one Azure subscription, with the Activity Log of every subscription of a management group
# (optional), AKS audit logs and Entra ID / Microsoft Graph logs streamed to it.
# Build the zip first, from the repository root:  adscore package azure --out dist

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
  # The storage accounts have Shared Key authorization off: use Entra ID for blob uploads.
  storage_use_azuread = true
}

provider "azapi" {
  subscription_id = var.subscription_id
}

locals {
  # Where `adscore package azure --out dist` writes the zip, relative to this folder.
  package_path = coalesce(var.package_path, "${path.root}/../../../dist/adscore-azure-functions.zip")
  # Every subscription under the management group (the current one when none is given).
  activity_log_subscription_ids = var.management_group_name == null ? [] : data.azurerm_management_group.scope[0].all_subscription_ids
}

data "azurerm_management_group" "scope" {
  count = var.management_group_name == null ? 0 : 1
  name  = var.management_group_name
}

resource "azurerm_resource_group" "adscore" {
  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}

module "adscore" {
  source = "../../azure"

  name_prefix         = var.name_prefix
  resource_group_name = azurerm_resource_group.adscore.name
  location            = azurerm_resource_group.adscore.location
  package_path        = local.package_path

  webhook_urls          = var.webhook_urls
  create_webhook_secret = var.create_webhook_secret
  app_settings          = var.app_settings

  activity_log_subscription_ids = local.activity_log_subscription_ids
  aks_cluster_ids               = var.aks_cluster_ids
  enable_entra_logs             = var.enable_entra_logs

  tags = var.tags
}
