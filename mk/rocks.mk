# `make curl-compat`: the C compiled as libcurl 7.68 sees it (tools/curl-compat.sh,
# csrc/curl/curl_versions.txt); spec/hosts/curl_compat_spec.lua runs it too.

curl-compat:
	@sh tools/curl-compat.sh

.PHONY: curl-compat
