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

// loadVulkan opens the Vulkan loader once per process and hands its vkGetInstanceProcAddr to the binding.
func loadVulkan() error {
	loadOnce.Do(func() {
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
