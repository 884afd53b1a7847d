module github.com/proxychain/proxychain

go 1.26
