// Package lessons holds the classroom lessons, one folder each, and the
// tests of the messages a child sees when something is typed wrong.
//
// Each lesson is a program of its own: go run . inside its folder.
package lessons
