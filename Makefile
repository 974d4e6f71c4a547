# vktrain: `make run` trains the default model, `make test` runs the whole suite on lavapipe.
GO ?= go
BIN := bin/vktrain
# The test suite runs on Mesa's lavapipe so that it is the same on every machine, with a cache
# folder of its own, so that a profile `vktrain tune` wrote for this machine does not change it.
# It runs whole at vktrain's default vector width (512 bits on AVX-512 CPUs, else Mesa's 256),
# then the kernels and the model again at 256 and the kernels at 128 bits (subgroups of 8 and 4),
# then fuzzes the safetensors reader (files come from strangers) for 10 s over its seed corpus.
TEST_ENV := VKTRAIN_DEVICE=llvmpipe VKTRAIN_VALIDATE=1 VKTRAIN_CACHE_DIR=$(CURDIR)/bin/testcache

.PHONY: all build run test vet shaders check-shaders data deps-run deps-test clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vktrain

deps-run:
	@tools/deps.sh run

deps-test:
	@tools/deps.sh test

# Train the default model (gpt-tiny) with the V-cycle (preset gpt-tiny-vcycle: 2 x 64 -> 1 x 32
# -> 2 x 64) on the default corpus on the best device, a minute or so on a CPU, then sample from
# it. A second `make run` continues nothing and refuses to overwrite: it starts runs/gpt-tiny-vcycle-N.
run: deps-run data build
	$(BIN) devices
	@out=runs/gpt-tiny-vcycle; n=1; while [ -e $$out ]; do n=$$((n+1)); out=runs/gpt-tiny-vcycle-$$n; done; \
	$(BIN) train -preset gpt-tiny-vcycle -out $$out && \
	$(BIN) sample -ckpt $$out -prompt "It is a truth universally acknowledged" -tokens 120 && \
	echo "outputs: $$out/metrics.jsonl (one line per logged step, with its V-cycle level), $$out/curves.png, checkpoint in $$out/checkpoints" && \
	echo "compare it with plain training: $(BIN) compare -preset gpt-tiny-vcycle"

vet:
	$(GO) vet ./...

# The whole suite with the validation layers, then the runtime and kernel tests again at
# subgroup size 4 (lavapipe's 128-bit vectors).
test: deps-test data vet check-shaders
	$(TEST_ENV) $(GO) test -count=1 -timeout 30m ./...
	LP_NATIVE_VECTOR_WIDTH=256 $(TEST_ENV) $(GO) test -count=1 -timeout 30m ./vk/... ./model/...
	LP_NATIVE_VECTOR_WIDTH=128 $(TEST_ENV) $(GO) test -count=1 -timeout 30m ./vk/...
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 10s ./internal/safetensors

# Compile every shaders/*.comp to shaders/spv/*.spv (glslc, then spirv-val).
shaders:
	$(GO) run ./tools/shaderbuild

# Fail when the committed SPIR-V differs from a fresh build.
check-shaders:
	$(GO) run ./tools/shaderbuild -check

# Fetch the default corpus (Jane Austen's six novels, Debian's r-cran-janeaustenr) into data/austen; no R needed.
# and Fashion-MNIST (Debian's dataset-fashion-mnist) into data/fashion-mnist for the ViT presets.
data:
	$(GO) run ./tools/corpus
	$(GO) run ./tools/corpus -dataset fashion-mnist

clean:
	rm -rf bin
