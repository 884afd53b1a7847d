package bufpool

import "testing"

func TestClasses(t *testing.T) {
	before := Outstanding()
	small, large := Get(), GetLarge()
	if len(*small) != Size || IsLarge(small) || len(*large) != LargeSize || !IsLarge(large) {
		t.Fatalf("Get: len %d, GetLarge: len %d", len(*small), len(*large))
	}
	if held := Outstanding() - before; held != 2 {
		t.Fatalf("Outstanding: %d more, want 2", held)
	}

	// A filled small buffer grows; a large one stays. Either way the direction holds one.
	grown := Grow(small)
	if !IsLarge(grown) || len(*grown) != LargeSize {
		t.Fatalf("Grow(small): len %d, want a large buffer", len(*grown))
	}
	if Grow(large) != large {
		t.Fatal("Grow(large) replaced the buffer")
	}
	if held := Outstanding() - before; held != 2 {
		t.Fatalf("after Grow: %d more outstanding, want 2", held)
	}

	// A buffer comes back to its own class whatever its length when put.
	*grown = (*grown)[:10]
	Put(grown)
	Put(large)
	if held := Outstanding() - before; held != 0 {
		t.Fatalf("after Put: %d more outstanding, want 0", held)
	}
	for range 10 {
		b := GetLarge()
		if len(*b) != LargeSize {
			t.Fatalf("GetLarge after a short Put: len %d", len(*b))
		}
		Put(b)
	}

	// A layered buffer is large, and goes back to its own pool, not the large one.
	layered := GetLayered()
	if len(*layered) != LayeredSize || !IsLarge(layered) {
		t.Fatalf("GetLayered: len %d, IsLarge %v", len(*layered), IsLarge(layered))
	}
	*layered = (*layered)[:10]
	Put(layered)
	for range 10 {
		b, l := GetLarge(), GetLayered()
		if len(*b) != LargeSize || len(*l) != LayeredSize {
			t.Fatalf("after a layered Put: GetLarge len %d, GetLayered len %d", len(*b), len(*l))
		}
		Put(b)
		Put(l)
	}
	if held := Outstanding() - before; held != 0 {
		t.Fatalf("at the end: %d more outstanding, want 0", held)
	}
}
