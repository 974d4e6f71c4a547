// shim.h declares the few Vulkan entry points that the vulkan-go binding does not wrap:
// loading libvulkan.so.1 by its runtime name, vkGetPhysicalDeviceProperties2 with its pNext
// chain (subgroup, ID and driver properties), and a VK_EXT_debug_utils messenger that forwards
// validation messages to Go. The structs are declared by hand with the layouts of the Vulkan
// specification so that no Vulkan development headers are needed to build.
#ifndef VKTRAIN_SHIM_H
#define VKTRAIN_SHIM_H
#include <stdint.h>

// vkt_load opens the Vulkan loader; it returns NULL on success or a message.
const char* vkt_load(const char* soname);
// vkt_get_instance_proc_addr is the loader's vkGetInstanceProcAddr (NULL before vkt_load).
void* vkt_get_instance_proc_addr(void);
// vkt_cpu_has_avx512f reports whether the CPU runs AVX-512F instructions (0 off x86).
int vkt_cpu_has_avx512f(void);

// vkt_device_extra holds what vkGetPhysicalDeviceProperties2 adds to the 1.0 properties.
typedef struct {
	uint32_t subgroup_size;
	uint32_t subgroup_stages;     // VkShaderStageFlags with subgroup operations
	uint32_t subgroup_operations; // VkSubgroupFeatureFlags
	uint64_t max_allocation; // VkPhysicalDeviceMaintenance3Properties (Vulkan 1.1)
	uint8_t device_uuid[16];
	int has_driver;
	uint32_t driver_id;
	char driver_name[256];
	char driver_info[256];
} vkt_device_extra;

// vkt_query_extra fills out for the physical device; want_driver chains
// VkPhysicalDeviceDriverProperties (Vulkan 1.2 or VK_KHR_driver_properties). Returns 0 on success.
int vkt_query_extra(void* instance, void* physical_device, int want_driver, vkt_device_extra* out);

// vkt_validation_chain returns a malloc'd pNext chain for VkInstanceCreateInfo that enables
// synchronization validation and a debug messenger for instance creation itself; free with
// vkt_free_chain. handle is passed back to Go with every message.
void* vkt_validation_chain(uintptr_t handle);
void vkt_free_chain(void* chain);
// vkt_create_messenger creates the debug messenger; returns the messenger or 0.
uint64_t vkt_create_messenger(void* instance, uintptr_t handle);
void vkt_destroy_messenger(void* instance, uint64_t messenger);

#endif
