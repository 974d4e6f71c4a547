#include "shim.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef void (*vkt_voidfn)(void);
typedef vkt_voidfn (*vkt_gipa_fn)(void* instance, const char* name);

static void* vkt_lib;
static vkt_gipa_fn vkt_gipa;

const char* vkt_load(const char* soname) {
	if (vkt_gipa) return NULL;
	vkt_lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!vkt_lib) return dlerror();
	vkt_gipa = (vkt_gipa_fn)dlsym(vkt_lib, "vkGetInstanceProcAddr");
	if (!vkt_gipa) return "the library has no vkGetInstanceProcAddr";
	return NULL;
}

void* vkt_get_instance_proc_addr(void) { return (void*)vkt_gipa; }

// Structure type values from the Vulkan registry.
enum {
	ST_PROPERTIES2 = 1000059001,
	ST_SUBGROUP = 1000094000,
	ST_ID = 1000071004,
	ST_DRIVER = 1000196000,
	ST_MAINTENANCE3 = 1000168000,
	ST_MESSENGER_INFO = 1000128004,
	ST_VALIDATION_FEATURES = 1000247000,
};

typedef struct { uint32_t sType; void* pNext; } chain_head;
// VkPhysicalDeviceProperties is 824 bytes with 8-byte alignment; the spare room is harmless.
typedef struct { uint32_t sType; void* pNext; uint64_t properties[128]; } props2;
typedef struct { uint32_t sType; void* pNext; uint32_t subgroupSize, stages, ops, quad; } subgroup_props;
typedef struct {
	uint32_t sType; void* pNext;
	uint8_t deviceUUID[16], driverUUID[16], deviceLUID[8];
	uint32_t nodeMask, luidValid;
} id_props;
typedef struct { uint32_t sType; void* pNext; uint32_t maxPerSetDescriptors; uint64_t maxMemoryAllocationSize; } maintenance3_props;
typedef struct {
	uint32_t sType; void* pNext;
	uint32_t driverID; char driverName[256]; char driverInfo[256]; uint8_t conformance[4];
} driver_props;

int vkt_query_extra(void* instance, void* physical_device, int want_driver, vkt_device_extra* out) {
	typedef void (*props2_fn)(void*, props2*);
	props2_fn f = (props2_fn)vkt_gipa(instance, "vkGetPhysicalDeviceProperties2");
	if (!f) f = (props2_fn)vkt_gipa(instance, "vkGetPhysicalDeviceProperties2KHR");
	if (!f) return -1;
	driver_props drv; memset(&drv, 0, sizeof drv); drv.sType = ST_DRIVER;
	maintenance3_props m3; memset(&m3, 0, sizeof m3); m3.sType = ST_MAINTENANCE3; m3.pNext = want_driver ? &drv : NULL;
	id_props id; memset(&id, 0, sizeof id); id.sType = ST_ID; id.pNext = &m3;
	subgroup_props sg; memset(&sg, 0, sizeof sg); sg.sType = ST_SUBGROUP; sg.pNext = &id;
	props2* p = calloc(1, sizeof(props2));
	if (!p) return -2;
	p->sType = ST_PROPERTIES2; p->pNext = &sg;
	f(physical_device, p);
	free(p);
	memset(out, 0, sizeof *out);
	out->subgroup_size = sg.subgroupSize;
	out->subgroup_stages = sg.stages;
	out->subgroup_operations = sg.ops;
	out->max_allocation = m3.maxMemoryAllocationSize;
	memcpy(out->device_uuid, id.deviceUUID, 16);
	out->has_driver = want_driver;
	if (want_driver) {
		out->driver_id = drv.driverID;
		memcpy(out->driver_name, drv.driverName, 256); out->driver_name[255] = 0;
		memcpy(out->driver_info, drv.driverInfo, 256); out->driver_info[255] = 0;
	}
	return 0;
}

// Debug utils: severity bits (VERBOSE 1, INFO 0x10, WARNING 0x100, ERROR 0x1000) and types
// (GENERAL 1, VALIDATION 2, PERFORMANCE 4).
typedef struct {
	uint32_t sType; const void* pNext; uint32_t flags;
	const char* pMessageIdName; int32_t messageIdNumber; const char* pMessage;
} messenger_callback_data;
typedef uint32_t (*messenger_fn)(uint32_t severity, uint32_t types, const messenger_callback_data* data, void* user);
typedef struct {
	uint32_t sType; const void* pNext; uint32_t flags;
	uint32_t messageSeverity, messageType;
	messenger_fn pfnUserCallback; void* pUserData;
} messenger_info;
typedef struct {
	uint32_t sType; const void* pNext;
	uint32_t enabledCount; const int32_t* pEnabled;
	uint32_t disabledCount; const int32_t* pDisabled;
} validation_features;

extern void vktValidationMessage(uintptr_t handle, uint32_t severity, char* id, char* message);

static uint32_t vkt_on_message(uint32_t severity, uint32_t types, const messenger_callback_data* data, void* user) {
	(void)types;
	vktValidationMessage((uintptr_t)user, severity, (char*)(data->pMessageIdName ? data->pMessageIdName : ""),
		(char*)(data->pMessage ? data->pMessage : ""));
	return 0;
}

static void fill_messenger_info(messenger_info* m, uintptr_t handle) {
	memset(m, 0, sizeof *m);
	m->sType = ST_MESSENGER_INFO;
	m->messageSeverity = 0x100 | 0x1000;
	m->messageType = 1 | 2 | 4;
	m->pfnUserCallback = vkt_on_message;
	m->pUserData = (void*)handle;
}

// The chain is one allocation: validation features, then the messenger info, then the enable list.
typedef struct { validation_features vf; messenger_info mi; int32_t enables[1]; } validation_chain;

void* vkt_validation_chain(uintptr_t handle) {
	validation_chain* c = calloc(1, sizeof(validation_chain));
	if (!c) return NULL;
	c->enables[0] = 4; // VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT
	c->vf.sType = ST_VALIDATION_FEATURES;
	c->vf.pNext = &c->mi;
	c->vf.enabledCount = 1;
	c->vf.pEnabled = c->enables;
	fill_messenger_info(&c->mi, handle);
	return c;
}

void vkt_free_chain(void* chain) { free(chain); }

uint64_t vkt_create_messenger(void* instance, uintptr_t handle) {
	typedef int32_t (*create_fn)(void*, const messenger_info*, const void*, uint64_t*);
	create_fn f = (create_fn)vkt_gipa(instance, "vkCreateDebugUtilsMessengerEXT");
	if (!f) return 0;
	messenger_info m;
	fill_messenger_info(&m, handle);
	uint64_t out = 0;
	if (f(instance, &m, NULL, &out) != 0) return 0;
	return out;
}

void vkt_destroy_messenger(void* instance, uint64_t messenger) {
	typedef void (*destroy_fn)(void*, uint64_t, const void*);
	destroy_fn f = (destroy_fn)vkt_gipa(instance, "vkDestroyDebugUtilsMessengerEXT");
	if (f && messenger) f(instance, messenger, NULL);
}

int vkt_cpu_has_avx512f(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") != 0;
#else
	return 0;
#endif
}
