package ofrep_test

import (
	"testing"
	"time"

	"github.com/flagsync/flagsync/ofrep"
)

// FuzzTicketValid: a ticket is untrusted query input. Nothing but the ticket the hub
// issued (for the current window) is accepted, and no input panics.
func FuzzTicketValid(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	ev := ofrep.NewEvents(ofrep.EventsOptions{TicketWindow: time.Hour, Now: func() time.Time { return now }})
	issued := ev.Ticket()
	for _, seed := range []string{issued, "", ".", "1.", ".x", "+" + issued, "0" + issued, issued + "=", "9999999999999999999.AAAA", "-1.x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ticket string) {
		if ev.TicketValid(ticket) && ticket != issued {
			t.Fatalf("accepted %q, issued %q", ticket, issued)
		}
	})
}
