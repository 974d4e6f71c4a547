package vk

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	vkapi "github.com/vulkan-go/vulkan"
)

// InstallHint tells a user how to get a Vulkan loader and a driver.
const InstallHint = "install the Vulkan loader and a driver; on Debian/Ubuntu: " +
	"sudo apt-get install -y libvulkan1 mesa-vulkan-drivers (Mesa's lavapipe runs on any CPU)"

// defaultLoader is the runtime name of the Vulkan loader. The binding's own loader opens
// "libvulkan.so", which only the -dev package provides, so vktrain opens the loader itself.
// VKTRAIN_VULKAN_LOADER names another file (a loader outside the library path).
const defaultLoader = "libvulkan.so.1"

var loadOnce struct {
	sync.Once
	err error
}

// lavapipeWidth is the environment variable that sets lavapipe's vector width in bits (and with it
// its subgroup size: width / 32 lanes). Mesa defaults to 256; vktrain asks for 512 on AVX-512 CPUs.
const lavapipeWidth = "LP_NATIVE_VECTOR_WIDTH"

// widenLavapipe asks lavapipe for 512-bit vectors (subgroups of 16) when the CPU has AVX-512 and
// the user has not chosen a width: a gpt-l4-256 training step runs about 1.5x faster than at
// Mesa's default of 256 (BENCHMARKS.md). It must run before the driver loads, which reads the
// variable once. LP_NATIVE_VECTOR_WIDTH=256 (or 128) keeps Mesa's choice.
func widenLavapipe() {
	if _, set := os.LookupEnv(lavapipeWidth); !set && cpuHasAVX512() {
		os.Setenv(lavapipeWidth, "512")
	}
}

// cpuHasAVX512 reports whether the CPU runs AVX-512F instructions.
func cpuHasAVX512() bool { return C.vkt_cpu_has_avx512f() != 0 }

// loadVulkan opens the Vulkan loader once per process and hands its vkGetInstanceProcAddr to the binding.
func loadVulkan() error {
	loadOnce.Do(func() {
		widenLavapipe()
		loader := os.Getenv("VKTRAIN_VULKAN_LOADER")
		if loader == "" {
			loader = defaultLoader
		}
		name := C.CString(loader)
		defer C.free(unsafe.Pointer(name))
		if msg := C.vkt_load(name); msg != nil {
			loadOnce.err = fmt.Errorf("no Vulkan loader (%s): %s; %s", loader, C.GoString(msg), InstallHint)
			return
		}
		vkapi.SetGetInstanceProcAddr(C.vkt_get_instance_proc_addr())
		if err := vkapi.Init(); err != nil {
			loadOnce.err = fmt.Errorf("initialising the Vulkan loader: %v; %s", err, InstallHint)
		}
	})
	return loadOnce.err
}

// check turns a VkResult into an error that names the call.
func check(call string, r vkapi.Result) error {
	if r == vkapi.Success {
		return nil
	}
	return fmt.Errorf("%s: %w (VkResult %d)", call, vkapi.Error(r), int32(r))
}
