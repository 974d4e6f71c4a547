package vk

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/vktrain/vktrain/internal/atomicfile"

	vkapi "github.com/vulkan-go/vulkan"

	"github.com/vktrain/vktrain/internal/cachedir"
)

// pipelineCache is a VkPipelineCache kept on disk between runs, one file per pipelineCacheUUID
// (the driver changes the UUID whenever old cache data would be invalid).
type pipelineCache struct {
	dev    vkapi.Device
	handle vkapi.PipelineCache
	path   string // "" when the disk cache is off
}

// openPipelineCache loads the cache file for this device, ignoring a missing or unreadable one.
func openPipelineCache(dev vkapi.Device, uuid [16]byte, dir string) (*pipelineCache, error) {
	pc := &pipelineCache{dev: dev}
	if dir == "" {
		if dir = cachedir.Dir(); dir == "" {
			dir = "-"
		}
	}
	var data []byte
	if dir != "-" {
		pc.path = filepath.Join(dir, "pipelines-"+hex.EncodeToString(uuid[:])+".bin")
		data, _ = os.ReadFile(pc.path) // a missing cache just means a cold start
	}
	info := vkapi.PipelineCacheCreateInfo{SType: vkapi.StructureTypePipelineCacheCreateInfo}
	if len(data) > 0 {
		info.InitialDataSize = uint(len(data))
		info.PInitialData = cBytes(data)
		defer cFree(info.PInitialData)
	}
	var h vkapi.PipelineCache
	if err := check("vkCreatePipelineCache", vkapi.CreatePipelineCache(dev, &info, nil, &h)); err != nil {
		return nil, err
	}
	pc.handle = h
	return pc, nil
}

// save writes the cache atomically (temporary file, then rename).
func (pc *pipelineCache) save() error {
	if pc.path == "" {
		return nil
	}
	var n uint
	if err := check("vkGetPipelineCacheData", vkapi.GetPipelineCacheData(pc.dev, pc.handle, &n, nil)); err != nil || n == 0 {
		return err
	}
	buf := cAlloc(int(n))
	defer cFree(buf)
	if err := check("vkGetPipelineCacheData", vkapi.GetPipelineCacheData(pc.dev, pc.handle, &n, buf)); err != nil {
		return err
	}
	data := unsafe.Slice((*byte)(buf), n)
	if err := atomicfile.Write(pc.path, data); err != nil {
		return fmt.Errorf("saving pipeline cache: %w", err)
	}
	return nil
}

func (pc *pipelineCache) destroy() { vkapi.DestroyPipelineCache(pc.dev, pc.handle, nil) }
