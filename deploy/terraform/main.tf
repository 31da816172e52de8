# The root key of labelvault in AWS KMS and the least-privilege permissions of the app's role.
# The policy documents are the JSON files in deploy/aws/ (one source, checked by tests/deploy/).
#
#   terraform init && terraform apply -var app_role_name=labelvault-app -var admin_role_arn=arn:aws:iam::...
#   then LABELVAULT_KMS_KEY_ID = the `key_arn` output.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "app_role_name" {
  description = "The IAM role the labelvault processes run as (instance profile, ECS task role, IRSA)."
  type        = string
}

variable "admin_role_arn" {
  description = "The role that administers the key (rotation, deletion); it can't use the key for data."
  type        = string
}

variable "key_alias" {
  type    = string
  default = "alias/labelvault-root"
}

data "aws_iam_role" "app" {
  name = var.app_role_name
}

resource "aws_kms_key" "root" {
  description              = "labelvault root key: wraps tenant keys (envelope encryption)"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  deletion_window_in_days  = 30
  policy = templatefile("${path.module}/../aws/kms-key-policy.json", {
    admin_role_arn = var.admin_role_arn
    app_role_arn   = data.aws_iam_role.app.arn
  })
}

resource "aws_kms_alias" "root" {
  name          = var.key_alias
  target_key_id = aws_kms_key.root.key_id
}

resource "aws_iam_role_policy" "app_kms" {
  name = "labelvault-kms"
  role = data.aws_iam_role.app.id
  policy = templatefile("${path.module}/../aws/iam-policy.json", {
    key_arn = aws_kms_key.root.arn
  })
}

output "key_arn" {
  description = "Set LABELVAULT_KMS_KEY_ID to this (the ARN, so rotation records match)."
  value       = aws_kms_key.root.arn
}
