terraform {
  # 1.9: input validations may refer to other variables.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.50+: key vault rbac_authorization_enabled, storage containers by storage_account_id.
      version = ">= 4.50.0, < 5.0.0"
    }
    # The state table is created through Azure Resource Manager, so the storage accounts can keep
    # Shared Key authorization off (azurerm 4.x creates tables over the data plane with Shared Key).
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.0.0, < 3.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.12.0, < 1.0.0"
    }
  }
}
