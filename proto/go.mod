module github.com/carenotify/carenotify/proto

go 1.26.0
