package vk

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/cgo"
	"strings"
	"sync"
)

// Severity bits of VK_EXT_debug_utils.
const (
	severityWarning = 0x100
	severityError   = 0x1000
)

// validator collects the validation layer's messages for one instance.
type validator struct {
	mu       sync.Mutex
	errs     []string
	warnings map[string]bool
	log      io.Writer // where warnings go; nil discards them
}

//export vktValidationMessage
func vktValidationMessage(handle C.uintptr_t, severity C.uint32_t, id, message *C.char) {
	v := cgo.Handle(handle).Value().(*validator)
	msg := C.GoString(message)
	v.mu.Lock()
	defer v.mu.Unlock()
	if severity&severityError != 0 {
		v.errs = append(v.errs, msg)
		return
	}
	key := C.GoString(id)
	if !v.warnings[key] && v.log != nil { // each kind of warning once
		v.warnings[key] = true
		fmt.Fprintf(v.log, "vulkan validation warning: %s\n", msg)
	}
}

// take returns the errors reported since the last call as one error, or nil.
func (v *validator) take() error {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.errs) == 0 {
		return nil
	}
	err := errors.New("Vulkan validation error: " + strings.Join(v.errs, "\nVulkan validation error: "))
	v.errs = nil
	return err
}

// ValidateFromEnv reports whether VKTRAIN_VALIDATE asks for the validation layers.
func ValidateFromEnv() bool {
	switch os.Getenv("VKTRAIN_VALIDATE") {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}
