module github.com/vktrain/vktrain

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/tiktoken-go/tokenizer v0.10.0
	github.com/vulkan-go/vulkan v0.0.0-20221209234627-c0a353ae26c8
)

require github.com/dlclark/regexp2/v2 v2.5.1 // indirect
