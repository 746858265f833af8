terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20.0, < 7.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }

  # Keep the state in a versioned bucket, for example:
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "adscore"
  # }
}
