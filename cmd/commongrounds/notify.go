package main

import (
	"log/slog"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/config"
)

// replyPusher returns what delivers the notifications of users with no socket open to their
// devices (Web Push), or nil when nothing does: they then wait in the inbox.
func replyPusher(_ *config.Config, _ *slog.Logger) cg.Pusher { return nil }
