# Bakes a warm microscale node: Debian 12 with microscale built and installed, its units
# enabled, Docker and containerd pointed at the cache, and the priority images already in the
# store (packer/provision.sh does all of it; this file only chooses the machine).
#
#   packer validate packer/
#   DOCKER_HOST=unix:///… packer build -only=docker.node -var docker_image=microscale-base:bookworm packer/
#   packer build -only=qemu.node -var base_image_url=… -var base_image_checksum=sha256:… packer/
#   packer build -only=amazon-ebs.node -var region=eu-west-1 -var source_ami=ami-… packer/
#
# Written for packer 1.6.6 (Debian 12's), whose builders are built in: validating needs no
# network and no plugin download.

# --- what goes on the node (passed to provision.sh) ---------------------------------------------

variable "upstream_url" {
  type        = string
  default     = "https://registry-1.docker.io"
  description = "docker.io's upstream for the cache: the registry itself or a tier cache."
}

variable "upstreams" {
  type        = string
  default     = "{}"
  description = "Other registries, JSON as in registry.json's upstreams: {\"ghcr.io\": {\"url\": \"https://ghcr.io\"}}."
}

variable "priority_images" {
  type        = list(string)
  default     = []
  description = "Images every node keeps warm (prewarmed at bake time); empty: images/priority.list."
}

variable "marathon_url" {
  type    = string
  default = "http://127.0.0.1:8080"
}

variable "capacity" {
  type        = number
  default     = 10
  description = "Instances the scaler shares between its apps."
}

variable "scaler_apps" {
  type        = string
  default     = ""
  description = "The scaler's apps, a JSON array as in scaler.json; empty: the two demo apps."
}

variable "enable_scaler" {
  type        = bool
  default     = false
  description = "Enable microscale-scaler at boot: with zookeeper set it is safe on every node (one leads); without, run one scaler per set of apps."
}

variable "zookeeper" {
  type        = string
  default     = ""
  description = "ZooKeeper servers (host:port,…) the scalers elect their leader through; empty: each scaler acts alone."
}

variable "store_max_bytes" {
  type        = string
  default     = ""
  description = "The cache's disk budget in bytes; empty: 80% of the free space at start."
}

# --- docker: a root file system, built on any machine with a dockerd ---------------------------

# No KVM, no cloud account: the provisioners run in a container of docker_image (a Debian 12 root
# file system with systemd; tests/bake/base.sh makes one with debootstrap and imports it), on the
# host's network, and the container's file system is exported as a tarball, which boots under
# `systemd-nspawn --boot` (or becomes a disk image). The docker client packer calls finds its
# dockerd through DOCKER_HOST, as usual.
variable "docker_image" {
  type        = string
  default     = "microscale-base:bookworm"
  description = "The base: a Debian 12 root file system with systemd, sudo and ca-certificates (tests/bake/base.sh)."
}

variable "docker_pull" {
  type        = bool
  default     = false
  description = "Pull docker_image first; false: it is a local image (docker import)."
}

variable "docker_export_path" {
  type        = string
  default     = "output-microscale/microscale-node.tar"
  description = "Where the node's root file system is written, a tarball (docker export)."
}

# --- qemu: a local build from a Debian 12 cloud image -------------------------------------------

# A dated Debian 12 image, pinned by its SHA-512: the same bytes on every bake. Pass a newer one
# (https://cloud.debian.org/images/cloud/bookworm/, its SHA512SUMS) to bake on a newer point
# release; "file:URL" checksums are fetched at validate time, so the default avoids them.
variable "base_image_url" {
  type        = string
  default     = "https://cloud.debian.org/images/cloud/bookworm/20240211-1654/debian-12-generic-amd64-20240211-1654.qcow2"
  description = "A Debian 12 qcow2 with cloud-init (Debian's generic or genericcloud image)."
}

variable "base_image_checksum" {
  type        = string
  default     = "sha512:b679398972ba45a60574d9202c4f97ea647dd3577e857407138b73b71a3c3c039804e40aac2f877f3969676b6c8a1ebdb4f2d67a4efa6301c21e349e37d43ef5"
  description = "sha512:… of base_image_url."
}

variable "disk_size" {
  type        = string
  default     = "20G"
  description = "The node's disk: the cache's store lives on it."
}

variable "qemu_accelerator" {
  type    = string
  default = "kvm"
}

variable "output_directory" {
  type    = string
  default = "output-microscale"
}

# --- amazon-ebs: an AMI -------------------------------------------------------------------------

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "source_ami" {
  type        = string
  default     = ""
  description = "A Debian 12 AMI; empty: the newest debian-12-amd64-* from Debian's account."
}

variable "instance_type" {
  type    = string
  default = "t3.medium"
}

variable "ami_name_prefix" {
  type    = string
  default = "microscale-node"
}

variable "subnet_id" {
  type    = string
  default = ""
}

locals {
  stamp = formatdate("YYYYMMDD-hhmmss", timestamp())
  # provision.sh reads only these; packer quotes each value for the remote shell.
  provision_env = [
    "MICROSCALE_UPSTREAM_URL=${var.upstream_url}",
    "MICROSCALE_UPSTREAMS=${var.upstreams}",
    "MICROSCALE_PRIORITY_IMAGES=${join(",", var.priority_images)}",
    "MICROSCALE_MARATHON_URL=${var.marathon_url}",
    "MICROSCALE_CAPACITY=${var.capacity}",
    "MICROSCALE_APPS=${var.scaler_apps}",
    "MICROSCALE_ENABLE_SCALER=${var.enable_scaler ? "1" : "0"}",
    "MICROSCALE_ZOOKEEPER=${var.zookeeper}",
    "MICROSCALE_STORE_MAX_BYTES=${var.store_max_bytes}",
  ]
}

source "docker" "node" {
  image       = var.docker_image
  pull        = var.docker_pull
  export_path = var.docker_export_path
  # The host's network: apt reaches the package archive and the prewarm the upstream as they would
  # from the host. Nothing is published, no bridge is needed.
  run_command = ["-d", "-i", "-t", "--network=host", "--entrypoint=/bin/sh", "--", "{{.Image}}"]
  # Where packer mounts the files it uploads: under /tmp, which a booted node empties.
  container_dir = "/tmp/packer-files"
}

source "qemu" "node" {
  iso_url          = var.base_image_url
  iso_checksum     = var.base_image_checksum
  disk_image       = true
  disk_size        = var.disk_size
  format           = "qcow2"
  accelerator      = var.qemu_accelerator
  headless         = true
  memory           = 2048
  cpus             = 2
  output_directory = var.output_directory
  vm_name          = "microscale-node-${local.stamp}.qcow2"
  # cloud-init's NoCloud source reads user-data and meta-data from packer's HTTP server.
  http_directory = "${path.root}/cloud-init"
  qemuargs = [
    ["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"],
  ]
  ssh_username = "debian"
  # Must match packer/cloud-init/user-data; locked before the image is saved.
  ssh_password     = "microscale-bake"
  ssh_timeout      = "15m"
  shutdown_command = "sudo shutdown -P now"
}

source "amazon-ebs" "node" {
  region        = var.region
  instance_type = var.instance_type
  source_ami    = var.source_ami
  # Without source_ami: the newest Debian 12 AMI from Debian's own account.
  dynamic "source_ami_filter" {
    for_each = var.source_ami == "" ? ["debian-12-amd64-*"] : []
    content {
      filters = {
        name                = source_ami_filter.value
        virtualization-type = "hvm"
        root-device-type    = "ebs"
      }
      owners      = ["136693071363"]
      most_recent = true
    }
  }
  subnet_id       = var.subnet_id
  ssh_username    = "admin"
  ami_name        = "${var.ami_name_prefix}-${local.stamp}"
  ami_description = "Debian 12 with microscale (node-local registry cache, prewarmed)"
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 20
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }
  tags = {
    Name     = "${var.ami_name_prefix}-${local.stamp}"
    Software = "microscale"
  }
}

build {
  sources = ["source.docker.node", "source.qemu.node", "source.amazon-ebs.node"]

  # The whole tree (sources, Makefile, packer/, images/ with any tarballs to import).
  provisioner "shell" {
    inline = ["rm -rf /tmp/microscale", "mkdir -p /tmp/microscale"]
  }
  provisioner "file" {
    source      = "${path.root}/../"
    destination = "/tmp/microscale"
  }

  provisioner "shell" {
    environment_vars = local.provision_env
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    inline           = ["/tmp/microscale/packer/provision.sh"]
  }

  # What the bake needed and the image must not keep: the tree, the bake password, cloud-init's
  # record of this instance (so that each node runs its own first boot; a docker base may have no
  # cloud-init, and then no record), the machine id, docker's marker file (docker.node).
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo {{ .Path }}"
    inline = [
      "rm -rf /tmp/microscale",
      "passwd -l debian 2>/dev/null || true",
      "if command -v cloud-init >/dev/null; then cloud-init clean --logs; fi",
      "truncate -s 0 /etc/machine-id",
      "rm -f /.dockerenv",
    ]
  }
}
