#!/usr/bin/env bash
# Installs what vktrain needs from Debian/Ubuntu packages when it is missing.
#   tools/deps.sh run    the Vulkan loader and lavapipe (to run vktrain)
#   tools/deps.sh test   also glslc, spirv-tools and the validation layers (to build shaders and test),
#                        and Open MPI (the data-parallel tests build vktrain with -tags mpi)
# As root or with password-less sudo it runs apt-get; otherwise it prints the command and fails.
set -euo pipefail
mode=${1:-test}
missing=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1" || ls /usr/lib/*/"$1" >/dev/null 2>&1; }
have_lib libvulkan.so.1 || missing+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
if [ "$mode" = test ]; then
  command -v glslc >/dev/null || missing+=(glslc)
  command -v spirv-val >/dev/null || missing+=(spirv-tools)
  ls /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json >/dev/null 2>&1 || missing+=(vulkan-validationlayers)
  command -v mpirun >/dev/null || missing+=(openmpi-bin)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  pkg-config --exists ompi 2>/dev/null || missing+=(libopenmpi-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y ${missing[*]}"
if ! command -v apt-get >/dev/null; then
  echo "vktrain needs: ${missing[*]} (Debian/Ubuntu package names); install them with your package manager." >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then sudo=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
else
  echo "vktrain needs packages that are missing. Run:" >&2
  echo "  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo $cmd
