terraform {
  # 1.9: input validations may refer to other variables.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.x: data.aws_region.current.region; event rule state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.
      version = ">= 6.0.0, < 7.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }
}
