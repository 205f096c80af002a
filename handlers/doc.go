// Package handlers holds phonepipe's Watermill command and event handlers:
// split an accepted upload into validation jobs, validate and enrich rows
// into per-number events, project those events into read models, and count
// finished jobs until an import completes.
//
// Each handler takes a typed command or event (never a *message.Message),
// runs in the unit of work of the message that carries it (see
// transport/storage), checks that it has not already applied that message,
// writes its effects and publishes what they cause — all in one transaction,
// so effects and follow-up messages happen exactly once on an at-least-once
// bus. Handlers log nothing they return: the router logs errors.
package handlers
