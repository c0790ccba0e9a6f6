package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/wszerotest"
)

// Two services built only with the public API, each a wszero server and a
// client of the other: "orders" takes orders from shops and reserves the
// goods at "stock"; "stock" asks "orders" for prices, and tells it when
// goods come in, which "orders" passes on to the shops.
func TestTwoServicesCallEachOther(t *testing.T) {
	type line struct {
		Item string
		Qty  int
	}
	type receipt struct {
		Item  string
		Qty   int
		Total float64
		Left  int
	}
	var toStock, toOrders *client.Conn // each service's client of the other
	callCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), testTimeout)
	}

	// orders runs handlers in parallel: while "order" waits for stock,
	// stock calls back its "price".
	orders := newServer(wszero.WithParallelHandlers())
	orders.On("price", func(c *wszero.Client, p struct{ Item string }) (float64, error) {
		prices := map[string]float64{"apple": 0.5, "pear": 0.75}
		price, ok := prices[p.Item]
		if !ok {
			return 0, fmt.Errorf("no price for %s", p.Item)
		}
		return price, nil
	})
	orders.On("order", func(c *wszero.Client, l line) (receipt, error) {
		ctx, cancel := callCtx()
		defer cancel()
		var r receipt
		if err := toStock.Call(ctx, "reserve", l, &r); err != nil {
			var se *client.ServerError
			if errors.As(err, &se) {
				return receipt{}, errors.New("stock says: " + se.Message)
			}
			return receipt{}, err
		}
		return r, nil
	})

	var mu sync.Mutex
	shelf := map[string]int{"apple": 20, "pear": 0}
	stock := newServer()
	stock.On("reserve", func(c *wszero.Client, l line) (receipt, error) {
		ctx, cancel := callCtx()
		defer cancel()
		var price float64
		if err := toOrders.Call(ctx, "price", wszero.Params{"item": l.Item}, &price); err != nil {
			return receipt{}, err
		}
		mu.Lock()
		defer mu.Unlock()
		if shelf[l.Item] < l.Qty {
			return receipt{}, fmt.Errorf("only %d %ss left", shelf[l.Item], l.Item)
		}
		shelf[l.Item] -= l.Qty
		return receipt{Item: l.Item, Qty: l.Qty, Total: price * float64(l.Qty), Left: shelf[l.Item]}, nil
	})
	stock.On("restock", func(c *wszero.Client, l line) error {
		mu.Lock()
		shelf[l.Item] += l.Qty
		mu.Unlock()
		return stock.Broadcast("restocked", l)
	})

	ordersSrv := wszerotest.NewServer(t, orders)
	stockSrv := wszerotest.NewServer(t, stock)
	toStock = dial(t, stockSrv.URL, client.WithHandler("restocked", func(l line) error {
		return orders.Broadcast("news", wszero.Params{"text": fmt.Sprintf("%d %ss in stock", l.Qty, l.Item)})
	}))
	toOrders = dial(t, ordersSrv.URL, client.WithHandler("news", func(wszero.Params) {}))

	shop := ordersSrv.Dial()
	require.Equal(t, map[string]any{"Item": "apple", "Qty": 4.0, "Total": 2.0, "Left": 16.0},
		shop.Call("order", wszero.Params{"item": "apple", "qty": 4}))
	require.Equal(t, "stock says: only 0 pears left", shop.CallError("order", wszero.Params{"item": "pear", "qty": 1}))
	require.Equal(t, "stock says: server: price: no price for plum", shop.CallError("order", wszero.Params{"item": "plum", "qty": 1}))

	// Goods come in at stock; the shops hear it through orders.
	warehouse := stockSrv.Dial()
	warehouse.Send("restock", wszero.Params{"item": "pear", "qty": 3})
	require.Equal(t, wszero.Params{"text": "3 pears in stock"}, shop.Expect("news"))
	require.Equal(t, map[string]any{"Item": "pear", "Qty": 2.0, "Total": 1.5, "Left": 1.0},
		shop.Call("order", wszero.Params{"item": "pear", "qty": 2}))

	// Many shops at once: the calls cross in both directions concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := client.Dial(ctx, ordersSrv.URL, client.WithLogger(nil))
			if err != nil {
				errs <- err
				return
			}
			defer func() {
				c.Close()
				<-c.Done()
			}()
			var r receipt
			errs <- c.Call(ctx, "order", wszero.Params{"item": "apple", "qty": 1}, &r)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	mu.Lock()
	require.Equal(t, 20-4-8, shelf["apple"])
	mu.Unlock()
}
