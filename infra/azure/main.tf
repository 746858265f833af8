# adscore on Azure: a Linux Function App (Python 3.11) running the `adscore package azure` zip with a
# system-assigned identity; Event Grid (subscription system topic) and Event Hub (diagnostic settings)
# deliveries; a state table and dead-letter containers; Key Vault for secrets; Application Insights.
# Shared Key authorization is off on both storage accounts: every data access uses Entra ID roles,
# each scoped to the one table, container, hub or secret it needs.

data "azurerm_client_config" "current" {}
data "azurerm_subscription" "current" {}

locals {
  # Event Grid filter generated from src/adscore/actions.py by scripts/gen_infra_filters.py.
  event_grid = jsondecode(file("${path.module}/generated/event_grid_filter.json"))

  # Globally unique names: a stable suffix from the subscription, resource group and prefix.
  suffix               = substr(md5("${data.azurerm_subscription.current.subscription_id}/${var.resource_group_name}/${var.name_prefix}"), 0, 6)
  host_storage_name    = "${var.name_prefix}fn${local.suffix}"
  data_storage_name    = "${var.name_prefix}st${local.suffix}"
  function_app_name    = "${var.name_prefix}-func-${local.suffix}"
  key_vault_name       = "${var.name_prefix}-kv-${local.suffix}"
  eventhub_namespace   = "${var.name_prefix}-eh-${local.suffix}"
  eventhub_name        = "diagnostic-logs"
  consumer_group       = "adscore"
  package_container    = "function-packages"
  function_dead_letter = "function-deadletter"
  grid_dead_letter     = "eventgrid-deadletter"

  activity_log_subscriptions = length(var.activity_log_subscription_ids) > 0 ? toset(var.activity_log_subscription_ids) : toset([data.azurerm_subscription.current.subscription_id])

  system_topic_name     = var.existing_system_topic == null ? azurerm_eventgrid_system_topic.subscription[0].name : var.existing_system_topic.name
  system_topic_rg       = var.existing_system_topic == null ? var.resource_group_name : var.existing_system_topic.resource_group_name
  system_topic_identity = var.existing_system_topic == null ? azurerm_eventgrid_system_topic.subscription[0].identity[0].principal_id : data.azurerm_eventgrid_system_topic.existing[0].identity[0].principal_id

  # Alerts go to the function logs (Application Insights) and to the webhooks.
  sinks            = join(",", concat(["stdout://jsonl"], var.webhook_urls))
  sinks_in_vault   = nonsensitive(length(var.webhook_urls)) > 0 # how many URLs is not a secret; count needs it plain
  secret_ids = merge(
    local.sinks_in_vault ? { sinks = azurerm_key_vault_secret.sinks[0].resource_versionless_id } : {},
    var.create_webhook_secret ? { webhook = azurerm_key_vault_secret.webhook[0].resource_versionless_id } : {},
    { for k, v in azurerm_key_vault_secret.ingest : "ingest_${k}" => v.resource_versionless_id },
  )
  # The ingest endpoint (on_ingest, POST /api/ingest): its credentials from Key Vault when enabled,
  # otherwise the function is disabled (the host's AzureWebJobs.<function>.Disabled setting).
  ingest_settings = var.enable_ingest_endpoint ? {
    ADSCORE_INGEST_TOKEN          = "@Microsoft.KeyVault(VaultName=${azurerm_key_vault.this.name};SecretName=${azurerm_key_vault_secret.ingest["token"].name})"
    ADSCORE_INGEST_SIGNING_SECRET = "@Microsoft.KeyVault(VaultName=${azurerm_key_vault.this.name};SecretName=${azurerm_key_vault_secret.ingest["signing"].name})"
    ADSCORE_INGEST_MAX_BYTES      = tostring(var.ingest_max_bytes)
  } : { "AzureWebJobs.on_ingest.Disabled" = "true" }
  package_blob_url = "${azurerm_storage_account.host.primary_blob_endpoint}${local.package_container}/${azurerm_storage_blob.package.name}"

  app_settings = merge(
    var.app_settings,
    {
      WEBSITE_RUN_FROM_PACKAGE                 = local.package_blob_url
      FUNCTIONS_WORKER_RUNTIME                 = "python"
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "Authorization=AAD"
      ADSCORE_STATE                            = "azuretable://${azapi_resource.state_table.name}?endpoint=${trimsuffix(azurerm_storage_account.data.primary_table_endpoint, "/")}"
      ADSCORE_DEADLETTER                       = "azureblob://${local.function_dead_letter}?endpoint=${trimsuffix(azurerm_storage_account.data.primary_blob_endpoint, "/")}"
      ADSCORE_EVENTHUB__fullyQualifiedNamespace = "${azurerm_eventhub_namespace.this.name}.servicebus.windows.net"
      ADSCORE_EVENTHUB_NAME                    = azurerm_eventhub.logs.name
      ADSCORE_EVENTHUB_CONSUMER_GROUP          = azurerm_eventhub_consumer_group.adscore.name
      ADSCORE_SINKS                            = local.sinks_in_vault ? "@Microsoft.KeyVault(VaultName=${azurerm_key_vault.this.name};SecretName=${azurerm_key_vault_secret.sinks[0].name})" : local.sinks
    },
    var.create_webhook_secret ? { ADSCORE_WEBHOOK_SECRET = "@Microsoft.KeyVault(VaultName=${azurerm_key_vault.this.name};SecretName=${azurerm_key_vault_secret.webhook[0].name})" } : {},
    local.ingest_settings,
  )
}

# ------------------------------------------------------------------------------------------------
# Storage: host account (Functions runtime, package) and data account (state, dead letters)
# ------------------------------------------------------------------------------------------------

resource "azurerm_storage_account" "host" {
  #checkov:skip=CKV_AZURE_43:The name is name_prefix (validated: 3-12 of a-z 0-9) + 2 letters + 6 hex digits of an md5, so 11-20 of a-z 0-9; checkov cannot evaluate the md5 of a data source and reads the expression as the name.
  #checkov:skip=CKV_AZURE_33:The queue service is not used (no queue triggers); its logging settings are data-plane calls that need Shared Key, which is off.
  #checkov:skip=CKV_AZURE_35:Consumption Function Apps reach storage over its public endpoint (no VNet integration); access is Entra ID only, Shared Key is off.
  #checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: the Function App host reads and writes here without VNet integration.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need VNet integration of the Function App (a Premium or dedicated plan); optional, not the default.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure encryption; a customer-managed key needs its own Key Vault key lifecycle.
  name                              = local.host_storage_name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  infrastructure_encryption_enabled = true
  local_user_enabled                = false

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  tags = var.tags
}

resource "azurerm_storage_account" "data" {
  #checkov:skip=CKV_AZURE_43:The name is name_prefix (validated: 3-12 of a-z 0-9) + 2 letters + 6 hex digits of an md5, so 11-20 of a-z 0-9; checkov cannot evaluate the md5 of a data source and reads the expression as the name.
  #checkov:skip=CKV_AZURE_33:The queue service is not used (dead letters go to blobs); its logging settings are data-plane calls that need Shared Key, which is off.
  #checkov:skip=CKV_AZURE_35:Consumption Function Apps reach storage over its public endpoint (no VNet integration); access is Entra ID only, Shared Key is off.
  #checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: the function reads and writes the state table without VNet integration.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need VNet integration of the Function App (a Premium or dedicated plan); optional, not the default.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure encryption; a customer-managed key needs its own Key Vault key lifecycle.
  name                              = local.data_storage_name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  infrastructure_encryption_enabled = true
  local_user_enabled                = false

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = 30
    }
    container_delete_retention_policy {
      days = 30
    }
  }

  tags = var.tags
}

resource "azurerm_storage_container" "packages" {
  #checkov:skip=CKV2_AZURE_21:Blob requests are logged by the diagnostic setting on the account's blob service (StorageRead/Write/Delete to Log Analytics); the check only knows the legacy Storage Insights, which needs the account key (Shared Key is off).
  name                  = local.package_container
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "function_dead_letter" {
  #checkov:skip=CKV2_AZURE_21:Blob requests are logged by the diagnostic setting on the account's blob service (StorageRead/Write/Delete to Log Analytics); the check only knows the legacy Storage Insights, which needs the account key (Shared Key is off).
  name                  = local.function_dead_letter
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "grid_dead_letter" {
  #checkov:skip=CKV2_AZURE_21:Blob requests are logged by the diagnostic setting on the account's blob service (StorageRead/Write/Delete to Log Analytics); the check only knows the legacy Storage Insights, which needs the account key (Shared Key is off).
  name                  = local.grid_dead_letter
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

# Audit trail of the storage data plane: every blob and table request, in Log Analytics.
resource "azurerm_monitor_diagnostic_setting" "storage" {
  for_each = {
    host_blob  = "${azurerm_storage_account.host.id}/blobServices/default"
    data_blob  = "${azurerm_storage_account.data.id}/blobServices/default"
    data_table = "${azurerm_storage_account.data.id}/tableServices/default"
  }
  name                       = "${var.name_prefix}-storage-audit"
  target_resource_id         = each.value
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

# State table (src/adscore/state/azure_table.py TABLE_SCHEMA: PartitionKey, RowKey, expires_at; the
# function's daily timer deletes expired entities, Table storage has no TTL).
resource "azapi_resource" "state_table" {
  type      = "Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01"
  name      = var.state_table_name
  parent_id = "${azurerm_storage_account.data.id}/tableServices/default"
  body = {
    properties = {}
  }
}

# The identity running Terraform uploads the package over the data plane (Shared Key is off).
resource "azurerm_role_assignment" "deployer_packages" {
  count                = var.grant_deployer_access ? 1 : 0
  scope                = "${azurerm_storage_account.host.id}/blobServices/default/containers/${azurerm_storage_container.packages.name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_role_assignment" "deployer_secrets" {
  count                = var.grant_deployer_access ? 1 : 0
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "time_sleep" "deployer_roles" {
  create_duration = "${var.grant_deployer_access ? var.rbac_propagation_seconds : 0}s"
  depends_on      = [azurerm_role_assignment.deployer_packages, azurerm_role_assignment.deployer_secrets]
}

resource "azurerm_storage_blob" "package" {
  # Named by content, so a new build is a new URL and the Function App restarts on it.
  name                   = "adscore-azure-functions-${filemd5(var.package_path)}.zip"
  storage_account_name   = azurerm_storage_account.host.name
  storage_container_name = azurerm_storage_container.packages.name
  type                   = "Block"
  source                 = var.package_path
  content_md5            = filemd5(var.package_path)
  content_type           = "application/zip"

  depends_on = [time_sleep.deployer_roles]
}

# ------------------------------------------------------------------------------------------------
# Key Vault: the sinks (webhook URLs are credentials) and the webhook signing key
# ------------------------------------------------------------------------------------------------

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_109:App Service resolves Key Vault references over the vault's public endpoint unless the app is VNet-integrated; access is Azure RBAC only.
  #checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: the Function App (Consumption) has no private network path to the vault.
  #checkov:skip=CKV2_AZURE_32:Private endpoints need VNet integration of the Function App (a Premium or dedicated plan); optional, not the default.
  name                          = local.key_vault_name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true

  network_acls {
    default_action = "Allow"
    bypass         = "AzureServices"
  }

  tags = var.tags
}

resource "time_offset" "secret_expiry" {
  offset_days = var.secret_validity_days
}

resource "random_password" "webhook" {
  count   = var.create_webhook_secret ? 1 : 0
  length  = 64
  special = false
}

resource "azurerm_key_vault_secret" "webhook" {
  count           = var.create_webhook_secret ? 1 : 0
  name            = "adscore-webhook-secret"
  value           = random_password.webhook[0].result
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = "text/plain; HMAC-SHA256 key"
  expiration_date = time_offset.secret_expiry.rfc3339

  lifecycle {
    # Rotated out of band with the receiver; Terraform only sets the first value.
    ignore_changes = [value]
  }

  depends_on = [time_sleep.deployer_roles]
}

# The ingest endpoint's credentials: API servers' bearer token, forwarders' Standard Webhooks secret.
resource "random_password" "ingest_token" {
  count   = var.enable_ingest_endpoint ? 1 : 0
  length  = 48
  special = false
}

resource "random_id" "ingest_signing" {
  count       = var.enable_ingest_endpoint ? 1 : 0
  byte_length = 32
}

resource "azurerm_key_vault_secret" "ingest" {
  for_each        = var.enable_ingest_endpoint ? toset(["token", "signing"]) : toset([])
  name            = "adscore-ingest-${each.key}"
  value           = each.key == "token" ? random_password.ingest_token[0].result : "whsec_${random_id.ingest_signing[0].b64_std}"
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = each.key == "token" ? "text/plain; bearer token" : "text/plain; Standard Webhooks secret"
  expiration_date = time_offset.secret_expiry.rfc3339

  lifecycle {
    # Rotated out of band with the senders; Terraform only sets the first value.
    ignore_changes = [value]
  }

  depends_on = [time_sleep.deployer_roles]
}

resource "azurerm_key_vault_secret" "sinks" {
  count           = local.sinks_in_vault ? 1 : 0
  name            = "adscore-sinks"
  value           = local.sinks
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = "text/plain; comma-separated sink URLs"
  expiration_date = time_offset.secret_expiry.rfc3339

  depends_on = [time_sleep.deployer_roles]
}

# ------------------------------------------------------------------------------------------------
# Event Hub: the diagnostic settings' destination, read by on_event_hub
# ------------------------------------------------------------------------------------------------

resource "azurerm_eventhub_namespace" "this" {
  name                          = local.eventhub_namespace
  resource_group_name           = var.resource_group_name
  location                      = var.location
  sku                           = "Standard"
  capacity                      = 1
  minimum_tls_version           = "1.2"
  public_network_access_enabled = true
  # Diagnostic settings deliver with a namespace authorization rule (SAS); the function reads with Entra ID.
  local_authentication_enabled = true

  identity {
    type = "SystemAssigned"
  }

  tags = var.tags
}

resource "azurerm_eventhub" "logs" {
  name              = local.eventhub_name
  namespace_id      = azurerm_eventhub_namespace.this.id
  partition_count   = var.eventhub_partition_count
  message_retention = var.eventhub_retention_days
}

resource "azurerm_eventhub_consumer_group" "adscore" {
  name                = local.consumer_group
  namespace_name      = azurerm_eventhub_namespace.this.name
  eventhub_name       = azurerm_eventhub.logs.name
  resource_group_name = var.resource_group_name
}

# Azure Monitor streams diagnostic logs with a namespace rule holding Manage, Send and Listen.
resource "azurerm_eventhub_namespace_authorization_rule" "diagnostics" {
  name                = "azure-monitor-diagnostics"
  namespace_name      = azurerm_eventhub_namespace.this.name
  resource_group_name = var.resource_group_name
  listen              = true
  send                = true
  manage              = true
}

resource "azurerm_monitor_diagnostic_setting" "activity_log" {
  for_each                       = local.activity_log_subscriptions
  name                           = "${var.name_prefix}-activity-log"
  target_resource_id             = "/subscriptions/${each.value}"
  eventhub_name                  = azurerm_eventhub.logs.name
  eventhub_authorization_rule_id = azurerm_eventhub_namespace_authorization_rule.diagnostics.id

  dynamic "enabled_log" {
    for_each = toset(var.activity_log_categories)
    content {
      category = enabled_log.value
    }
  }
}

resource "azurerm_monitor_diagnostic_setting" "aks_audit" {
  for_each                       = toset(var.aks_cluster_ids)
  name                           = "${var.name_prefix}-kube-audit"
  target_resource_id             = each.value
  eventhub_name                  = azurerm_eventhub.logs.name
  eventhub_authorization_rule_id = azurerm_eventhub_namespace_authorization_rule.diagnostics.id

  enabled_log {
    category = var.aks_audit_category
  }
}

# Data plane: Key Vault AuditEvent and Storage reads (src/adscore/sources/azure.py _parse_data_plane)
resource "azurerm_monitor_diagnostic_setting" "key_vault_audit" {
  for_each                       = toset(var.key_vault_ids)
  name                           = "${var.name_prefix}-keyvault-audit"
  target_resource_id             = each.value
  eventhub_name                  = azurerm_eventhub.logs.name
  eventhub_authorization_rule_id = azurerm_eventhub_namespace_authorization_rule.diagnostics.id

  enabled_log {
    category = "AuditEvent"
  }
}

resource "azurerm_monitor_diagnostic_setting" "storage_reads" {
  for_each = {
    for pair in setproduct(var.storage_account_ids, ["blob", "queue", "table", "file"]) :
    "${pair[0]}/${pair[1]}" => "${pair[0]}/${pair[1]}Services/default"
  }
  name                           = "${var.name_prefix}-storage-reads"
  target_resource_id             = each.value
  eventhub_name                  = azurerm_eventhub.logs.name
  eventhub_authorization_rule_id = azurerm_eventhub_namespace_authorization_rule.diagnostics.id

  enabled_log {
    category = "StorageRead"
  }
}

resource "azurerm_monitor_aad_diagnostic_setting" "entra" {
  count                          = var.enable_entra_logs ? 1 : 0
  name                           = "${var.name_prefix}-entra"
  eventhub_name                  = azurerm_eventhub.logs.name
  eventhub_authorization_rule_id = azurerm_eventhub_namespace_authorization_rule.diagnostics.id

  dynamic "enabled_log" {
    for_each = toset(var.entra_log_categories)
    content {
      category = enabled_log.value
    }
  }
}

# ------------------------------------------------------------------------------------------------
# Monitoring: Log Analytics workspace and Application Insights (Entra ID ingestion only)
# ------------------------------------------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name_prefix}-logs-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "this" {
  name                          = "${var.name_prefix}-appi-${local.suffix}"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  workspace_id                  = azurerm_log_analytics_workspace.this.id
  application_type              = "other"
  local_authentication_disabled = true
  tags                          = var.tags
}

# ------------------------------------------------------------------------------------------------
# Function App
# ------------------------------------------------------------------------------------------------

resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_212:The Consumption plan scales from zero and has no instance minimum; set plan_sku_name to a Premium SKU for always-ready instances.
  #checkov:skip=CKV_AZURE_225:Zone redundancy needs a Premium or dedicated plan; plan_sku_name selects one.
  name                = "${var.name_prefix}-plan-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = var.plan_sku_name
  tags                = var.tags
}

resource "azurerm_linux_function_app" "this" {
  #checkov:skip=CKV_AZURE_221:Event Grid delivers to the Event Grid trigger over the public endpoint; the trigger requires the function's system key.
  name                                           = local.function_app_name
  resource_group_name                            = var.resource_group_name
  location                                       = var.location
  service_plan_id                                = azurerm_service_plan.this.id
  storage_account_name                           = azurerm_storage_account.host.name
  storage_uses_managed_identity                  = true
  https_only                                     = true
  public_network_access_enabled                  = true
  builtin_logging_enabled                        = false
  functions_extension_version                    = "~4"
  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = false
  app_settings                                   = local.app_settings

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = azurerm_application_insights.this.connection_string
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"

    application_stack {
      python_version = var.python_version
    }
  }

  tags = var.tags
}

# ------------------------------------------------------------------------------------------------
# Role assignments: least privilege for the function and the system topic
# ------------------------------------------------------------------------------------------------

locals {
  function_roles = merge(
    {
      # The Functions host keeps leases, checkpoints and keys in blobs of its own account, and the
      # platform reads the package from there (identity-based AzureWebJobsStorage).
      host_blobs = {
        scope = azurerm_storage_account.host.id
        role  = "Storage Blob Data Owner"
      }
      state_table = {
        scope = azapi_resource.state_table.id
        role  = "Storage Table Data Contributor"
      }
      dead_letters = {
        scope = "${azurerm_storage_account.data.id}/blobServices/default/containers/${azurerm_storage_container.function_dead_letter.name}"
        role  = "Storage Blob Data Contributor"
      }
      event_hub = {
        scope = azurerm_eventhub.logs.id
        role  = "Azure Event Hubs Data Receiver"
      }
      telemetry = {
        scope = azurerm_application_insights.this.id
        role  = "Monitoring Metrics Publisher"
      }
    },
    { for name, id in local.secret_ids : "secret_${name}" => { scope = id, role = "Key Vault Secrets User" } },
  )
}

resource "azurerm_role_assignment" "function" {
  for_each             = local.function_roles
  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = azurerm_linux_function_app.this.identity[0].principal_id
}

resource "azurerm_role_assignment" "grid_dead_letter" {
  scope                = "${azurerm_storage_account.data.id}/blobServices/default/containers/${azurerm_storage_container.grid_dead_letter.name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.system_topic_identity
}

# The host must read its package and index its functions before Event Grid can validate the endpoint.
resource "time_sleep" "function_ready" {
  create_duration = "${var.rbac_propagation_seconds}s"
  depends_on      = [azurerm_role_assignment.function, azurerm_role_assignment.grid_dead_letter]
}

# ------------------------------------------------------------------------------------------------
# Event Grid: the subscription's system topic -> on_event_grid, filtered to the known operations
# ------------------------------------------------------------------------------------------------

resource "azurerm_eventgrid_system_topic" "subscription" {
  count               = var.existing_system_topic == null ? 1 : 0
  name                = "${var.name_prefix}-subscription-events"
  resource_group_name = var.resource_group_name
  location            = "Global"
  source_resource_id  = data.azurerm_subscription.current.id
  topic_type          = "Microsoft.Resources.Subscriptions"

  identity {
    type = "SystemAssigned"
  }

  tags = var.tags
}

data "azurerm_eventgrid_system_topic" "existing" {
  count               = var.existing_system_topic == null ? 0 : 1
  name                = var.existing_system_topic.name
  resource_group_name = var.existing_system_topic.resource_group_name
}

resource "azurerm_eventgrid_system_topic_event_subscription" "operations" {
  # Event Grid allows 25 advanced filter values per subscription: one subscription per chunk.
  for_each              = { for i, names in local.event_grid.operation_name_chunks : tostring(i) => names }
  name                  = "${var.name_prefix}-operations-${each.key}"
  system_topic          = local.system_topic_name
  resource_group_name   = local.system_topic_rg
  event_delivery_schema = "EventGridSchema"
  included_event_types  = local.event_grid.included_event_types

  azure_function_endpoint {
    function_id                       = "${azurerm_linux_function_app.this.id}/functions/on_event_grid"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }

  advanced_filter {
    string_in {
      key    = local.event_grid.advanced_filter_key
      values = each.value
    }
  }

  retry_policy {
    max_delivery_attempts = var.event_grid_max_delivery_attempts
    event_time_to_live    = 1440
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.data.id
    storage_blob_container_name = azurerm_storage_container.grid_dead_letter.name
  }

  depends_on = [time_sleep.function_ready]
}
